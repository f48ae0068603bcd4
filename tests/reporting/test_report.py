"""`generate_report` on a tiny trained run: self-contained HTML, complete report.json, numbers that match the run."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from radcnn.errors import MissingExtraError, RunDirectoryError
from radcnn.models.checkpoint import load_model
from radcnn.reporting.gallery import CATEGORIES
from radcnn.reporting.model_card import RESEARCH_ONLY, SYNTHETIC_CAVEAT
from radcnn.reporting.report import generate_report
from radcnn.reporting.report_data import is_synthetic

DATA_URI = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)")
N_GALLERY = 2


def _strict_json(path: Path) -> dict:
    def refuse(constant):
        raise AssertionError(f"{path} holds {constant}: not strict JSON")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


@pytest.fixture(scope="module")
def built(tiny_run_template, tmp_path_factory):
    """One report for the read-only tests of this module (on a private copy of the tiny run)."""
    run = Path(shutil.copytree(tiny_run_template, tmp_path_factory.mktemp("report") / "run"))
    calls = []
    result = generate_report(run, n_gallery=N_GALLERY, n_boot=200, progress=lambda d, t: calls.append((d, t)))
    return run, result, calls


def test_report_runs_the_evaluation_first_and_reports_progress(built):
    run, result, calls = built
    assert result.html_path == run / "report.html" and result.json_path == run / "report.json"
    for name in ("metrics.json", "predictions.csv", "metrics_val.json", "report.html", "report.json"):
        assert (run / name).is_file(), name
    assert calls[-1] == (len(calls), len(calls)) and len(calls) >= 3


def test_html_is_self_contained(built):
    _, result, _ = built
    html = result.html_path.read_text(encoding="utf-8")
    images = re.findall(r'<img[^>]*\ssrc="([^"]*)"', html)
    assert images and all(src.startswith("data:image/png;base64,") for src in images)
    for src in images:  # every inline image decodes
        Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).load()
    text = DATA_URI.sub("data:", html)  # base64 text may spell anything by chance; check the rest
    for forbidden in ("http:", "https:", "//", 'src="/', "<script", "<link", "@import", "url(", "@font-face"):
        assert forbidden not in text, forbidden
    # The only hyperlinks are in-page anchors.
    assert all(href.startswith("#") for href in re.findall(r'href="([^"]*)"', html))


def test_every_figure_is_in_the_html(built):
    _, result, _ = built
    html = result.html_path.read_text(encoding="utf-8")
    report = result.report
    assert set(report["figures"]) == {
        "roc_pneumonia",
        "pr_pneumonia",
        "calibration_pneumonia",
        "confusion_pneumonia",
        "training",
    }
    gallery = report["evaluation"]["labels"]["pneumonia"]["gallery"]
    thumbs = sum(len(items) for items in gallery.values())
    overlays = sum(1 for items in gallery.values() for item in items if item["explanation"])
    assert len(re.findall(r"<img ", html)) == len(report["figures"]) + thumbs + overlays


def test_report_json_has_every_section(built):
    run, result, _ = built
    report = _strict_json(result.json_path)
    assert report == result.report
    assert {
        "config",
        "data",
        "evaluation",
        "subgroups",
        "training",
        "model_card",
        "figures",
        "explanations",
        "synthetic_data",
        "run",
    } <= set(report)
    assert report["config"]["data"]["image_size"] == [28, 28]
    summary = json.loads((run / "data_summary.json").read_text())
    data = report["data"]
    assert [s["images"] for s in data["splits"]] == [s["images"] for s in summary["splits"]]
    assert [s["patients"] for s in data["splits"]] == [s["patients"] for s in summary["splits"]]
    test = next(s for s in data["splits"] if s["split"] == "test")
    balance = test["balance"][0]
    assert balance["prevalence"] == pytest.approx(balance["positives"] / test["images"])
    assert data["leakage_passed"] is True and data["skipped"] == []
    assert data["metadata_columns"] == ["site", "view", "sex", "age"]
    assert [e["epoch"] for e in report["training"]["epochs"]] == [1, 2]


def test_metrics_and_threshold_match_the_run(built):
    run, result, _ = built
    metrics = json.loads((run / "metrics.json").read_text())["labels"]["pneumonia"]
    section = result.report["evaluation"]["labels"]["pneumonia"]
    rows = {row["key"]: row for row in section["metrics"]}
    assert rows["roc_auc"]["estimate"] == pytest.approx(metrics["metrics"]["roc_auc"])
    assert rows["sensitivity"]["low"] == pytest.approx(metrics["ci95"]["sensitivity"]["low"])
    _, spec = load_model(run / "best_model.safetensors")
    threshold = section["threshold"]
    assert threshold["value"] == pytest.approx(spec.thresholds[0])
    assert threshold["chosen_on"] == "val" and threshold["source"] == "youden on val"
    val = json.loads((run / "metrics_val.json").read_text())["labels"]["pneumonia"]["metrics"]
    assert threshold["val"]["sensitivity"] == pytest.approx(val["sensitivity"])
    roc = section["curves"]["roc"]
    assert roc["fpr"][0] == 0 and roc["tpr"][-1] == 1


def test_subgroup_rows_cover_the_recorded_metadata(built):
    run, result, _ = built
    rows = pd.DataFrame(result.report["subgroups"]["pneumonia"])
    assert set(rows["column"]) == {"all", "sex", "age_band", "view", "site"}
    n_test = result.report["evaluation"]["n_images"]
    assert rows.loc[rows["column"] == "all", "n"].item() == n_test
    for column in ("sex", "age_band", "view", "site"):
        assert rows.loc[rows["column"] == column, "n"].sum() == n_test  # every image in exactly one subgroup
    assert set(rows.loc[rows["column"] == "sex", "value"]) == {"F", "M"}
    assert set(rows.loc[rows["column"] == "site", "value"]) == {"north", "south"}
    assert {"sensitivity_low", "roc_auc_high", "n_groups"} <= set(rows.columns)


def test_gallery_holds_the_four_categories_correctly_assigned(built):
    run, result, _ = built
    section = result.report["evaluation"]["labels"]["pneumonia"]
    cut = section["threshold"]["value"]
    gallery = section["gallery"]
    assert list(gallery) == list(CATEGORIES)
    predictions = pd.read_csv(run / "predictions.csv")
    shown = 0
    for category, items in gallery.items():
        assert len(items) <= N_GALLERY
        for item in items:
            row = predictions.iloc[item["row"]]
            assert Path(row["path"]).name == item["file"]
            assert item["probability"] == pytest.approx(row["pneumonia_probability"])
            positive_call = item["probability"] >= cut
            assert (
                category
                == {
                    (1, True): "true_positive",
                    (0, True): "false_positive",
                    (1, False): "false_negative",
                    (0, False): "true_negative",
                }[(item["truth"], positive_call)]
            )
            shown += 1
    assert shown >= 2


def test_model_card_says_research_only_and_describes_the_data(built):
    _, result, _ = built
    card = result.report["model_card"]
    assert card["intended_use"][0] == RESEARCH_ONLY
    assert card["caveats"] == [] and result.report["synthetic_data"] is False
    assert any("test:" in line and "patients" in line for line in card["data"])
    assert any("28×28" in line for line in card["limitations"])
    html = result.html_path.read_text(encoding="utf-8")
    assert "not for clinical use" in html and "Model card" in html


def test_report_without_explanations_and_without_the_explain_extra(tiny_run, monkeypatch):
    result = generate_report(tiny_run, n_gallery=1, n_boot=50, explanations=False)
    assert result.report["explanations"]["included"] is False
    assert all(
        not i["explanation"] for v in result.report["evaluation"]["labels"]["pneumonia"]["gallery"].values() for i in v
    )

    from radcnn.explain import registry

    def missing():
        raise MissingExtraError("captum", "explain")

    monkeypatch.setattr(registry, "require_captum", missing)
    result = generate_report(tiny_run, n_gallery=1, n_boot=50)
    assert result.report["explanations"]["included"] is False
    assert "pip install 'radcnn[explain]'" in result.report["explanations"]["note"]
    assert "pip install" in result.html_path.read_text(encoding="utf-8")


def test_gradcam_overlays_when_captum_is_installed(built):
    pytest.importorskip("captum")
    _, result, _ = built
    assert result.report["explanations"]["included"] is True
    gallery = result.report["evaluation"]["labels"]["pneumonia"]["gallery"]
    assert all(item["explanation"] for items in gallery.values() for item in items)


def test_synthetic_data_is_recognised(tmp_path):
    from radcnn.phantom.synth import CSV_COLUMNS

    labels = tmp_path / "phantom" / "labels.csv"
    labels.parent.mkdir()
    labels.write_text(",".join(CSV_COLUMNS) + "\n")
    assert is_synthetic({"source": str(labels)}, {}) is True
    other = tmp_path / "real" / "labels.csv"
    other.parent.mkdir()
    other.write_text("path,patient_id,nodule\n")
    assert is_synthetic({"source": str(other)}, {}) is False
    (other.parent / "dataset.json").write_text('{"synthetic": true}')
    assert is_synthetic({"source": str(other)}, {}) is True
    assert is_synthetic({"source": "x.npz", "synthetic": True}, {}) is True


def test_synthetic_run_carries_the_caveat(tiny_run):
    summary_path = tiny_run / "data_summary.json"
    summary = json.loads(summary_path.read_text())
    summary_path.write_text(json.dumps({**summary, "synthetic": True}))
    result = generate_report(tiny_run, n_gallery=0, n_boot=50, explanations=False)
    assert result.report["model_card"]["caveats"] == [SYNTHETIC_CAVEAT]
    assert "Synthetic data." in result.html_path.read_text(encoding="utf-8")


def test_missing_or_incomplete_run_is_a_clear_error(tmp_path, tiny_run):
    with pytest.raises(RunDirectoryError, match="no such run directory"):
        generate_report(tmp_path / "nope")
    (tiny_run / "best_model.safetensors").unlink()
    with pytest.raises(RunDirectoryError, match="best_model.safetensors is missing"):
        generate_report(tiny_run)
