"""The CLI end to end on a tiny synthetic DICOM set: synth → train → evaluate → predict, and the demo."""

import json
from pathlib import Path

import pandas as pd
import pytest

from radcnn.cli.app import main


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data, run = root / "data", root / "run"
    assert main(["synth", str(data), "--patients", "16", "--size", "64", "--seed", "1"]) == 0
    code = main(
        ["train", "--data", str(data / "labels.csv"), "--out", str(run), "--size", "48", "--epochs", "2"]
        + ["--precision", "32"]
    )
    assert code == 0
    return data, run


def test_train_writes_a_complete_run(tiny_run):
    data, run = tiny_run
    for name in ("config.yaml", "split.csv", "data_summary.json", "best_model.safetensors", "logs/metrics.csv"):
        assert (run / name).is_file(), name


def test_evaluate_writes_metrics_and_prints_the_table(tiny_run, capsys):
    data, run = tiny_run
    assert main(["evaluate", str(run), "--bootstrap", "50"]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "sensitivity" in out and "roc_auc" in out
    metrics = json.loads((run / "metrics.json").read_text())
    m = metrics["labels"]["nodule"]["metrics"]
    assert m["tp"] + m["fp"] + m["tn"] + m["fn"] == metrics["n_images"]
    assert (run / "predictions.csv").is_file()


@pytest.mark.parametrize("fmt", ["csv", "json", "table"])
def test_predict_gives_probability_and_decision_per_file(tiny_run, capsys, fmt):
    data, run = tiny_run
    images = sorted((data / "images").rglob("*.dcm"))[:3]
    assert main(["predict", str(run), *map(str, images), "--format", fmt]) == 0
    out = capsys.readouterr().out
    if fmt == "json":
        rows = json.loads(out)
        assert len(rows) == 3 and all(0.0 <= r["nodule_probability"] <= 1.0 for r in rows)
        assert all(isinstance(r["nodule_positive"], bool) for r in rows)
    elif fmt == "csv":
        assert out.splitlines()[0].startswith("path,") and len(out.splitlines()) == 4
    else:
        assert "nodule_probability" in out


def test_predict_names_an_unreadable_file(tiny_run, tmp_path, capsys):
    data, run = tiny_run
    bogus = tmp_path / "not_an_image.dcm"
    bogus.write_text("hello")
    assert main(["predict", str(run), str(bogus)]) == 1
    err = capsys.readouterr().err
    assert "not_an_image.dcm" in err and "Traceback" not in err


def test_bad_inputs_end_in_one_clear_message(tmp_path, capsys):
    csv = tmp_path / "labels.csv"
    csv.write_text("path,nodule\nx.png,1\n")
    assert main(["train", "--data", str(csv), "--out", str(tmp_path / "run")]) == 1
    assert "missing column" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path / "absent.csv"), "--out", str(tmp_path / "run")]) == 1
    assert "absent.csv" in capsys.readouterr().err
    assert main(["train", "--data", str(csv), "--out", str(tmp_path / "r"), "--model", "vgg99"]) == 1
    assert "seed_cnn" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", "--data", str(empty), "--out", str(tmp_path / "run2")]) == 1
    assert "empty" in capsys.readouterr().err
    assert not (tmp_path / "run").exists() and not (tmp_path / "run2").exists()


def test_existing_run_is_not_overwritten(tiny_run, capsys):
    data, run = tiny_run
    before = (run / "best_model.safetensors").read_bytes()
    assert main(["train", "--data", str(data / "labels.csv"), "--out", str(run), "--epochs", "1"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert (run / "best_model.safetensors").read_bytes() == before


def test_models_lists_the_registry(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "seed_cnn" in out and "densenet121" in out


@pytest.mark.slow
def test_demo_runs_end_to_end_on_a_tiny_set(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--patients", "14", "--epochs", "1", "--size", "48"]) == 0
    text = capsys.readouterr().out
    assert "results:" in text and "headline" in text
    for name in ("data/labels.csv", "run/best_model.safetensors", "run/metrics.json", "run/report.html"):
        assert (out / name).is_file(), name
    assert (out / "demo_predictions.csv").is_file()
    assert Path(out / "run" / "metrics.json").stat().st_size > 0
    gallery = (out / "explain" / "gallery.html").read_text()
    split = pd.read_csv(out / "run" / "split.csv")
    explained = min(4, int((split["split"] == "test").sum()))  # the test split of 14 patients may hold fewer
    for method in ("gradcam", "integrated_gradients", "occlusion", "lime", "kernel_shap"):
        assert len(list((out / "explain").rglob(f"{method}.npy"))) == explained, method
    # site_c is held out: never trained on, scored as an external cohort, shown beside the internal test AUC
    assert set(split.loc[split["split"] == "external", "site"]) == {"site_c"}
    assert "site_c" not in set(split.loc[split["split"] != "external", "site"])
    assert "site_c (held-out site)" in json.loads((out / "run" / "metrics.json").read_text())["external"]
    report = (out / "run" / "report.html").read_text(encoding="utf-8")
    assert 'id="external"' in report and "Shift gap" in report and "site_c (held-out site)" in text
    assert "data:image/png;base64," in gallery and 'src="http' not in gallery  # self-contained, offline
    assert "explanations" in text
    # The demo's own folder may be written again; the model is the same for the same seed.
    metrics = json.loads((out / "run" / "metrics.json").read_text())
    assert main(["demo", "--out", str(out), "--patients", "14", "--epochs", "1", "--size", "48"]) == 0
    again = json.loads((out / "run" / "metrics.json").read_text())
    assert again["labels"]["nodule"]["metrics"] == metrics["labels"]["nodule"]["metrics"]


def test_demo_never_touches_a_folder_it_did_not_write(tmp_path, capsys):
    out = tmp_path / "d"
    (out / "data").mkdir(parents=True)
    precious = out / "data" / "precious.txt"
    precious.write_text("x")
    assert main(["demo", "--out", str(out), "--patients", "20", "--epochs", "1", "--size", "32"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "holds files radcnn demo did not write (data)" in err and "--overwrite" in err
    assert precious.read_text() == "x" and sorted(p.name for p in out.rglob("*")) == ["data", "precious.txt"]


def test_predict_json_ends_with_a_newline(tiny_run, capsys):
    data, run = tiny_run
    image = sorted((data / "images").rglob("*.dcm"))[0]
    assert main(["predict", str(run), str(image), "--format", "json"]) == 0
    assert capsys.readouterr().out.endswith("]\n")


def test_on_error_skip_writes_skipped_csv_and_says_so(tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["synth", str(data), "--patients", "16", "--size", "64", "--seed", "2"]) == 0
    victim = sorted((data / "images").rglob("*.dcm"))[0]
    victim.write_bytes(victim.read_bytes()[:300])  # truncated DICOM
    args = ["train", "--data", str(data / "labels.csv"), "--size", "48", "--epochs", "1", "--precision", "32"]
    assert main([*args, "--out", str(tmp_path / "strict")]) == 1
    assert victim.name in capsys.readouterr().err
    assert not (tmp_path / "strict").exists()
    assert main([*args, "--out", str(tmp_path / "lenient"), "--on-error", "skip"]) == 0
    assert "skipped 1 input(s)" in capsys.readouterr().out
    rows = (tmp_path / "lenient" / "skipped.csv").read_text().splitlines()
    assert len(rows) == 2 and victim.name in rows[1]
