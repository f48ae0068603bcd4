"""docs/python-api.md runs as written: its ```python blocks, top to bottom, in one namespace, in an empty folder."""

from __future__ import annotations

import contextlib
import io

import pytest


@pytest.mark.slow
def test_the_python_api_page_runs_top_to_bottom(guide, tmp_path, monkeypatch):
    page = guide.DOCS / "python-api.md"
    blocks = [b for b in guide.code_blocks(page) if b.lang == "python"]
    assert len(blocks) >= 8
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    printed = io.StringIO()
    for block in blocks:
        code = compile(block.text, block.where, "exec")
        with contextlib.redirect_stdout(printed):
            exec(code, namespace)  # noqa: S102 — running the documentation is the point of this test
    # What the page says the calls give.
    assert namespace["phantom"].n_images == 61 and namespace["phantom"].n_patients == 24
    assert namespace["data"].label_names == ("nodule",)
    assert namespace["model_input"].array.shape == (1, 32, 32)
    assert (tmp_path / "runs/api/best_model.safetensors").is_file()
    assert (tmp_path / namespace["report"].html_path).resolve() == (tmp_path / "runs/api/report.html").resolve()
    choice = namespace["choice"]
    assert (choice.threshold, choice.sensitivity, choice.specificity) == pytest.approx((0.35, 1.0, 2 / 3))
    assert namespace["explanation"].maps["gradcam"].shape == (32, 32)
    assert len(namespace["encrypted"].manifest) == 61
    assert "effusion" in printed.getvalue()  # the last block prints the refusal, naming the missing label
