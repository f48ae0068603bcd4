"""External validation: the site-held-out protocol and `--external` datasets, in metrics.json and the report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from radcnn.errors import DataError

from .conftest import write_tiny_dataset


@pytest.fixture(scope="session")
def held_out_template(tmp_path_factory) -> Path:
    """A tiny run trained with site "south" held out (the tiny dataset's sites are north and south)."""
    from radcnn.config import DataConfig, RunConfig, TrainConfig
    from radcnn.training.fit import fit

    root = tmp_path_factory.mktemp("held_out")
    csv = write_tiny_dataset(root / "data")
    config = RunConfig(
        data=DataConfig(
            source=str(csv),
            image_size=(28, 28),
            label_columns=("pneumonia",),
            workers=1,
            val_fraction=0.25,
            test_fraction=0.3,
            hold_out_site="south",
        ),
        train=TrainConfig(epochs=2, seed=0, progress_bar=False, precision="32"),
    )
    return fit(config, root / "run").run_dir


@pytest.fixture
def held_out_run(held_out_template, tmp_path) -> Path:
    return Path(shutil.copytree(held_out_template, tmp_path / "run"))


def _metrics(run: Path) -> dict:
    # strict JSON: an undefined value must be null, never NaN
    return json.loads((run / "metrics.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))


def test_held_out_site_is_never_trained_on_and_is_scored_automatically(held_out_run):
    from radcnn.reporting.evaluate_run import evaluate_run
    from radcnn.runs import RunDir

    split = RunDir(held_out_run).split_table()
    assert set(split.loc[split["split"] == "external", "site"]) == {"south"}
    assert "south" not in set(split.loc[split["split"].isin(["train", "val", "test"]), "site"])
    evaluate_run(held_out_run, n_boot=100)
    metrics = _metrics(held_out_run)
    cohort = metrics["external"]["south (held-out site)"]
    assert cohort["kind"] == "held-out site"
    assert cohort["n_images"] == int((split["split"] == "external").sum())
    internal, external = metrics["labels"]["pneumonia"], cohort["labels"]["pneumonia"]
    assert external["threshold"] == internal["threshold"]  # carried over unchanged
    assert external["ci95"]["roc_auc"]["method"] == "percentile bootstrap over patients"
    assert external["ci95"]["roc_auc"]["low"] <= external["metrics"]["roc_auc"] <= external["ci95"]["roc_auc"]["high"]
    assert "clopper-pearson" in external["ci95"]["sensitivity"]["method"]
    assert external["calibration"]["raw"]["ece"] == pytest.approx(external["metrics"]["ece"])
    assert "calibrated" in external["calibration"]
    assert (held_out_run / cohort["predictions"]).is_file()
    # operating points: the run's own threshold first (its numbers are the headline's), then those chosen on val
    points = internal["operating_points"]
    assert points[0]["name"] == "run threshold" and points[0]["threshold"] == internal["threshold"]
    assert points[0]["metrics"]["sensitivity"]["estimate"] == pytest.approx(internal["metrics"]["sensitivity"])
    assert {"val-Youden", "sensitivity ≥ 0.90 on val", "specificity ≥ 0.95 on val"} <= {p["name"] for p in points}
    assert [p["name"] for p in external["operating_points"]] == [p["name"] for p in points]
    assert (held_out_run / "calibration.json").is_file()
    # the predictions file holds exactly the held-out images, scored at the carried-over threshold
    predictions = pd.read_csv(held_out_run / cohort["predictions"])
    assert set(predictions["path"]) == set(split.loc[split["split"] == "external", "path"])
    again = (predictions["pneumonia_probability"] >= internal["threshold"]).astype(int)
    assert (again == predictions["pneumonia_predicted"]).all()


def test_external_dataset_with_one_class_has_undefined_auc(held_out_run, tmp_path):
    from radcnn.reporting.external import evaluate_external

    data = Path(json.loads((held_out_run / "data_summary.json").read_text())["source"])
    table = pd.read_csv(data)
    positives = table[(table["pneumonia"] == 1) & (table["site"] == "south")].head(16).copy()  # never trained on
    positives["path"] = [str(data.parent / p) for p in positives["path"]]
    one_class = tmp_path / "positives.csv"
    positives.to_csv(one_class, index=False)
    result = evaluate_external(held_out_run, one_class, n_boot=100, name="all positive")
    metrics = _metrics(held_out_run)
    assert set(metrics["external"]) == {"south (held-out site)", "all positive"}
    entry = metrics["external"]["all positive"]["labels"]["pneumonia"]
    assert entry["metrics"]["roc_auc"] is None and entry["auc_note"] == "undefined — one class"
    assert entry["metrics"]["specificity"] is None  # no negatives: undefined, not 0
    assert result.metrics["external"]["all positive"]["label_map"] == {"pneumonia": "pneumonia"}
    # a proportion at the edge keeps an honest interval: PPV 1.0 over all predicted positives is not 1.0–1.0
    ppv = entry["ci95"]["ppv"]
    if entry["metrics"]["ppv"] == 1.0:
        assert ppv["low"] < 1.0 and ppv["high"] == 1.0

    # re-evaluating the internal test split keeps the external dataset entry and refreshes the held-out site
    from radcnn.reporting.evaluate_run import evaluate_run

    evaluate_run(held_out_run, n_boot=50)
    assert set(_metrics(held_out_run)["external"]) == {"south (held-out site)", "all positive"}

    # and the report shows both cohorts side by side, with the undefined AUC in words
    from radcnn.reporting.report import generate_report

    report = generate_report(held_out_run, n_boot=50, explanations=False)
    html = report.html_path.read_text(encoding="utf-8")
    assert 'id="external"' in html and "all positive" in html and "south (held-out site)" in html
    assert "undefined — one class" in html
    assert "clopper-pearson" in html and "Operating points" in html
    card = " ".join(report.report["model_card"]["metrics"])
    assert "External validation, south (held-out site)" in card and "ROC AUC undefined — one class" in card
    labels = report.report["external"]["labels"]["pneumonia"]
    assert labels["gaps"][0]["cohort"] == "south (held-out site)" and labels["gaps"][0]["auc_gap"] is not None
    assert labels["gaps"][1]["auc_gap"] is None


def test_external_dataset_lacking_the_runs_labels_names_them(held_out_run, tmp_path, capsys):
    from radcnn.reporting.external import evaluate_external

    data = Path(json.loads((held_out_run / "data_summary.json").read_text())["source"])
    table = pd.read_csv(data).head(10).rename(columns={"pneumonia": "effusion"})
    table["path"] = [str(data.parent / p) for p in table["path"]]
    other = tmp_path / "other.csv"
    table.to_csv(other, index=False)
    with pytest.raises(DataError, match=r"lacks the run's label\(s\) pneumonia; it has: effusion"):
        evaluate_external(held_out_run, other, n_boot=0)
    from radcnn.cli.app import main

    assert main(["evaluate", str(held_out_run), "--external", str(other)]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]  # the CLI ends with one error line, no traceback
    assert last.startswith("error: ") and "lacks the run's label(s) pneumonia" in last


def test_hold_out_without_a_site_column_is_one_clear_error(tmp_path, capsys):
    from radcnn.cli.app import main

    csv = write_tiny_dataset(tmp_path / "data", n_images=40)
    pd.read_csv(csv).drop(columns=["site"]).to_csv(csv, index=False)
    argv = ["train", "--data", str(csv), "--out", str(tmp_path / "run"), "--hold-out-site", "site_c", "--size", "28"]
    assert main(argv) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "--hold-out-site site_c needs a site column" in last
    assert not (tmp_path / "data" / ".radcnn-cache").exists()  # refused before any image was decoded
    assert not (tmp_path / "run").exists()


def test_hold_out_of_an_unknown_site_lists_the_sites(tmp_path):
    from radcnn.config import DataConfig
    from radcnn.data.prepare import prepare_data

    csv = write_tiny_dataset(tmp_path / "data", n_images=40)
    with pytest.raises(DataError, match="no images from site 'site_c'; sites present: north, south"):
        prepare_data(DataConfig(source=str(csv), image_size=(28, 28), workers=1, hold_out_site="site_c"))


def test_images_the_run_trained_on_are_refused_as_external(held_out_run):
    from radcnn.reporting.external import evaluate_external

    data = Path(json.loads((held_out_run / "data_summary.json").read_text())["source"])
    with pytest.raises(DataError, match="were used to train or tune the run"):
        evaluate_external(held_out_run, data, n_boot=0)
    assert "external" not in _metrics_if_any(held_out_run)


def _metrics_if_any(run: Path) -> dict:
    path = run / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def test_another_layout_maps_by_name_and_keeps_only_the_requested_split(held_out_run):
    """The run was trained on PNG files + a CSV; the external cohort is a MedMNIST .npz's test part."""
    import numpy as np

    from radcnn.reporting.external import evaluate_external

    from .conftest import NPZ

    result = evaluate_external(held_out_run, NPZ, split="test", name="medmnist test", n_boot=50)
    entry = result.metrics["external"]["medmnist test"]
    labels = np.load(NPZ)["test_labels"][:, 0]
    assert entry["n_images"] == len(labels) and entry["split"] == "test"
    metrics = entry["labels"]["pneumonia"]["metrics"]
    assert metrics["n_positive"] == int(labels.sum()) and metrics["n_negative"] == int((labels == 0).sum())
    predictions = pd.read_csv(held_out_run / entry["predictions"])
    assert len(predictions) == len(labels) and predictions["path"].str.contains(":test").all()
    with pytest.raises(DataError, match="no 'official' split; the dataset has: test, train, val"):
        evaluate_external(held_out_run, NPZ, split="official", n_boot=0)


def test_report_gallery_maps_share_one_scale_and_show_the_decision():
    import numpy as np

    from radcnn.reporting.gallery import GalleryImages, gallery_entries

    n = 8
    images = np.random.default_rng(0).random((n, 1, 16, 16)).astype(np.float32)
    probabilities = np.linspace(0.002, 0.99, n)
    predictions = pd.DataFrame(
        {
            "path": [f"row{i}.npz:test[{i}]" for i in range(n)],  # not files: images come from `rebuild`
            "x_true": [0, 0, 0, 0, 1, 1, 1, 1],
            "x_probability": probabilities,
        }
    )
    spec = type("Spec", (), {"input_size": (16, 16)})()
    loader = GalleryImages(spec, None, predictions["path"].tolist(), lambda: images)

    def explainer(batch, label_index):  # the map's strength follows the probability, as a real CAM's tends to
        rows = [int(np.argmin(np.abs(images[:, 0] - b[0]).sum(axis=(1, 2)))) for b in batch]
        return np.stack([np.full((16, 16), probabilities[r], dtype=np.float32) for r in rows])

    records, pictures = gallery_entries(predictions, "x", 0, 0.5, 2, loader, explainer=explainer)
    shown = [r for rows in records.values() for r in rows]
    scales = {tuple(r["map_scale"]) for r in shown}
    assert len(scales) == 1 and next(iter(scales)) == pytest.approx((0.0, 0.99))  # one scale for all images
    for r in shown:
        assert r["map_peak"] == pytest.approx(r["probability"], rel=1e-6)
        assert r["threshold"] == 0.5
        assert r["decision"] == ("positive" if r["probability"] >= 0.5 else "negative")
    # the weakest map's overlay is (nearly) the bare radiograph: colour departs little from gray
    weakest = min(shown, key=lambda r: r["map_peak"])
    assert weakest["probability"] < 0.01 and pictures[weakest["explanation"]].startswith(b"\x89PNG")
