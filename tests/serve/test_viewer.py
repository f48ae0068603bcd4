"""The browser viewer end to end: Debian's Chromium (driven by Playwright, no browser download) against a real
`radcnn serve` process, uploading a phantom DICOM and checking what is rendered."""

from __future__ import annotations

from pathlib import Path

import pytest

from radcnn.serve.predictor import Predictor

CHROMIUM = Path("/usr/bin/chromium")
CANVAS_STATS = """() => {
  const c = document.getElementById('view');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let sum = 0, colour = 0;
  for (let i = 0; i < d.length; i += 4) { sum += d[i + 1]; colour += Math.abs(d[i] - d[i + 2]); }
  const n = d.length / 4;
  return { width: c.width, height: c.height, mean: sum / n, colour: colour / n };
}"""


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: install Debian's chromium package (make test does)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


def set_range(page, element_id: str, value: float) -> None:
    page.evaluate(
        "([id, v]) => { const e = document.getElementById(id); e.value = v; e.dispatchEvent(new Event('input')); }",
        [element_id, value],
    )


def test_viewer_uploads_a_dicom_and_shows_prediction_window_level_and_heat_map(
    page, server, token, run_dir, phantom_dicoms, tmp_path
):
    base, _ = server
    page.goto(f"{base}/viewer/")
    page.wait_for_selector("#token-box:not([hidden])")  # the server wants a token: the page asks for it
    page.fill("#token", token)
    page.dispatch_event("#token", "change")
    page.wait_for_function("document.getElementById('model-name').textContent.includes('version')")

    path = phantom_dicoms[0]
    page.set_input_files("#file", str(path))
    page.wait_for_selector("body[data-ready='1']")
    expected = Predictor.from_path(run_dir).predict_files([path])[0]
    row = page.locator("#rows tr[data-label='nodule'] td")
    assert row.nth(1).inner_text() == f"{expected.probabilities['nodule']:.4f}"
    assert row.nth(2).inner_text() == f"{expected.thresholds['nodule']:.4f}"
    assert row.nth(3).inner_text() == ("positive" if expected.decisions["nodule"] else "negative")
    assert expected.model.version in page.inner_text("#model-name")
    assert "gradcam" in page.inner_text("#explained")

    set_range(page, "opacity", 0)
    plain = page.evaluate(CANVAS_STATS)
    assert (plain["width"], plain["height"]) == (64, 64) and plain["colour"] == 0 and plain["mean"] > 10
    set_range(page, "opacity", 100)
    assert page.evaluate(CANVAS_STATS)["colour"] > 5  # the heat map is drawn over the radiograph

    set_range(page, "opacity", 0)
    set_range(page, "ww", 20)
    set_range(page, "wl", 30)
    narrow = page.evaluate(CANVAS_STATS)
    assert abs(narrow["mean"] - plain["mean"]) > 10  # window/level changes the rendering

    page.evaluate("document.body.dataset.ready = ''")
    page.select_option("#method", "gradcam_pp")
    page.wait_for_selector("body[data-ready='1']")
    assert page.get_attribute("#explained", "data-method") == "gradcam_pp"
    page.screenshot(path=str(tmp_path / "viewer.png"))
    assert (tmp_path / "viewer.png").stat().st_size > 10_000


def test_viewer_shows_the_servers_refusal_of_a_non_image(page, server, tmp_path):
    base, _ = server
    note = tmp_path / "notes.txt"
    note.write_text("not a radiograph\n")
    page.set_input_files("#file", str(note))
    page.wait_for_function("document.getElementById('status').textContent.includes('HTTP 415')")
    assert "expected a DICOM, PNG or JPEG" in page.inner_text("#status")
