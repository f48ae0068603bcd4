"""`radcnn report RUN` and `radcnn compare RUN_A RUN_B` through `radcnn.cli.app.main`, on a tiny trained run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radcnn.cli.app import main


def _text(captured: str) -> str:
    """Rich wraps long lines at the terminal width; compare on single-spaced text."""
    return " ".join(captured.split())


NPZ = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "pneumoniamnist_dev.npz"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A seed CNN trained for one epoch on 160 PneumoniaMNIST PNGs (two per fake patient, with sex and age)."""
    from PIL import Image

    from radcnn.config import DataConfig, RunConfig, TrainConfig
    from radcnn.training.fit import fit

    if not NPZ.is_file():
        pytest.fail(f"{NPZ} is missing: the shared data folder must sit beside the repository")
    root = tmp_path_factory.mktemp("cli")
    data = np.load(NPZ)
    labels = data["train_labels"][:, 0]
    picked = np.r_[np.flatnonzero(labels == 1)[:80], np.flatnonzero(labels == 0)[:80]]
    (root / "data" / "images").mkdir(parents=True)
    rows = []
    for k, index in enumerate(picked):
        Image.fromarray(data["train_images"][index]).save(root / "data" / "images" / f"{k:03d}.png")
        rows.append(
            {
                "path": f"images/{k:03d}.png",
                "patient_id": f"P{k // 2:03d}",
                "pneumonia": int(labels[index]),
                "sex": "FM"[k // 2 % 2],
                "age": 30 + k % 50,
            }
        )
    pd.DataFrame(rows).to_csv(root / "data" / "labels.csv", index=False)
    config = RunConfig(
        data=DataConfig(
            source=str(root / "data" / "labels.csv"),
            image_size=(28, 28),
            label_columns=("pneumonia",),
            workers=1,
            val_fraction=0.25,
            test_fraction=0.3,
        ),
        train=TrainConfig(epochs=1, progress_bar=False, precision="32"),
    )
    return fit(config, root / "run").run_dir


def test_report_command_writes_both_files_and_shows_the_metrics(trained, tmp_path, capsys):
    run = Path(shutil.copytree(trained, tmp_path / "run"))
    code = main(["report", str(run), "--gallery", "1", "--bootstrap", "100", "--no-explain"])
    out = _text(capsys.readouterr().out)
    assert code == 0, out
    assert (run / "report.html").is_file() and (run / "report.json").is_file()
    assert "ROC AUC" in out and "95% CI" in out and "report.html" in out
    report = json.loads((run / "report.json").read_text())
    assert report["explanations"]["included"] is False
    method = report["evaluation"]["ci_method"]
    assert "percentile bootstrap over patients (100 resamples" in method and "Clopper–Pearson" in method


def test_report_command_on_a_missing_run_is_one_clear_line(tmp_path, capsys):
    code = main(["report", str(tmp_path / "missing")])
    err = _text(capsys.readouterr().err)
    assert code == 1
    assert "no such run directory" in err and "Traceback" not in err


def test_compare_command_writes_the_comparison(trained, tmp_path, capsys):
    run_a = Path(shutil.copytree(trained, tmp_path / "a"))
    run_b = Path(shutil.copytree(trained, tmp_path / "b"))
    out_file = tmp_path / "out" / "cmp.json"
    code = main(["compare", str(run_a), str(run_b), "--out", str(out_file), "--bootstrap", "100"])
    out = _text(capsys.readouterr().out)
    assert code == 0, out
    assert "DeLong" in out and "bootstrap" in out and "cmp.json" in out
    comparison = json.loads(out_file.read_text())
    assert comparison["labels"]["pneumonia"]["delong"]["diff"] == 0  # the same model on the same images
    assert comparison["n_boot"] == 100


def test_compare_command_refuses_runs_on_different_images(trained, tmp_path, capsys):
    run_a = Path(shutil.copytree(trained, tmp_path / "a"))
    run_b = Path(shutil.copytree(trained, tmp_path / "b"))
    assert main(["evaluate", str(run_b), "--bootstrap", "0"]) == 0
    table = pd.read_csv(run_b / "predictions.csv")
    table = table.iloc[1:]  # one image fewer
    table.to_csv(run_b / "predictions.csv", index=False)
    capsys.readouterr()
    code = main(["compare", str(run_a), str(run_b), "--out", str(tmp_path / "cmp.json")])
    err = _text(capsys.readouterr().err)
    assert code == 1
    assert "differ" in err and "1 image(s) only in the first" in err
    assert not (tmp_path / "cmp.json").exists()
