"""`radcnn train` as a user meets it: Ctrl-C and --resume, labels named by the data, config files with wrong
types, identical images across splits, k-fold cross-validation."""

import json
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import yaml

from radcnn.cli.app import main
from radcnn.runs import partial_dir

# Training that parks in the middle of its second epoch so a signal lands there for certain.
SCRIPT = """
import sys, time
from pathlib import Path
from radcnn.cli.app import main
from radcnn.training import module

original_step = module.ClassifierModule.training_step

def step_then_hold(self, batch, batch_idx):
    loss = original_step(self, batch, batch_idx)
    if self.current_epoch == 1 and batch_idx == 1:
        Path(sys.argv[1]).write_text("mid-epoch")
        time.sleep(120)
    return loss

module.ClassifierModule.training_step = step_then_hold
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    data = tmp_path_factory.mktemp("phantom") / "data"
    assert main(["synth", str(data), "--patients", "16", "--size", "64", "--seed", "2"]) == 0
    return data


def _interrupted_run(tmp_path, data, *options):
    run, marker = tmp_path / "run", tmp_path / "mid-epoch"
    args = ["train", "--data", str(data), "--out", str(run), "--size", "32", "--precision", "32", *options]
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(marker), *args], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    try:
        assert marker.exists(), f"training never reached epoch 2: {proc.stderr.read()[-2000:] if proc.poll() else ''}"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return run, proc.returncode, " ".join(err.split())


def test_ctrl_c_says_what_was_saved_and_resume_keeps_the_recorded_configuration(tmp_path, phantom, capsys):
    run, code, err = _interrupted_run(tmp_path, phantom, "--epochs", "2", "--batch-size", "16", "--lr", "5e-4")
    assert code == 130
    assert "interrupted: epoch 1 is saved in" in err and f"radcnn train --out {run} --resume" in err
    assert "Traceback" not in err and not run.exists()
    assert (partial_dir(run) / "checkpoints" / "last.ckpt").is_file()

    # A flag that differs from the recorded value is refused, naming it; nothing changes.
    assert main(["train", "--out", str(run), "--resume", "--batch-size", "32"]) == 1
    message = " ".join(capsys.readouterr().err.split())
    assert "cannot resume with --batch-size 32: the run was started with train.batch_size = 16" in message
    assert main(["train", "--out", str(run), "--resume", "--config", str(tmp_path / "c.yaml")]) == 1

    # --epochs extends the run, and is recorded; everything else comes from the run.
    assert main(["train", "--out", str(run), "--resume", "--epochs", "3"]) == 0
    recorded = yaml.safe_load((run / "config.yaml").read_text())
    assert recorded["train"]["epochs"] == 3 and recorded["train"]["batch_size"] == 16
    assert recorded["train"]["lr"] == 5e-4 and recorded["data"]["image_size"] == [32, 32]
    logged = pd.read_csv(run / "logs" / "metrics.csv")["epoch"].dropna().astype(int).unique()
    assert sorted(logged) == [0, 1, 2]
    assert json.loads((run / "run.json").read_text())["resumed"] == 1
    assert not partial_dir(run).exists()


def test_ctrl_c_before_the_first_epoch_leaves_nothing(tmp_path, phantom):
    script = SCRIPT.replace("self.current_epoch == 1 and batch_idx == 1", "self.current_epoch == 0 and batch_idx == 0")
    run, marker = tmp_path / "run", tmp_path / "mid-epoch"
    args = ["train", "--data", str(phantom), "--out", str(run), "--size", "32", "--epochs", "1"]
    proc = subprocess.Popen([sys.executable, "-c", script, str(marker), *args], stderr=subprocess.PIPE, text=True)
    while not marker.exists() and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "stopped before its first epoch finished; nothing was kept" in " ".join(
        err.split()
    )
    assert not run.exists() and not partial_dir(run).exists()


def test_labels_come_from_the_data_and_labels_chooses_among_them(tmp_path, capsys):
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "chest_xray"
    for split, n in (("train", 24), ("test", 8)):
        for cls in ("NORMAL", "PNEUMONIA"):
            for i in range(n):
                pixels = (rng.random((24, 24)) * (120 if cls == "NORMAL" else 255)).astype(np.uint8)
                folder = root / split / cls
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels).save(folder / f"person{i}_{cls.lower()}_{split}.png")
    base = ["train", "--data", str(root), "--size", "24", "--epochs", "1", "--precision", "32"]
    assert main([*base, "--out", str(tmp_path / "r1")]) == 0
    config = yaml.safe_load((tmp_path / "r1" / "config.yaml").read_text())
    summary = json.loads((tmp_path / "r1" / "data_summary.json").read_text())
    assert summary["label_names"] == ["PNEUMONIA"] and config["data"]["label_columns"] == []
    assert main([*base, "--out", str(tmp_path / "r2"), "--labels", "PNEUMONIA"]) == 0
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "r3"), "--labels", "nodule"]) == 1
    assert "unknown label(s) ['nodule']; valid: PNEUMONIA" in " ".join(capsys.readouterr().err.split())


def test_a_medmnist_file_names_its_label_like_data_inspect(tmp_path, capsys):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 64), ("val", 32), ("test", 32)):
        labels = (np.arange(n) % 2).astype(np.uint8)[:, None]
        arrays[f"{split}_images"] = (rng.random((n, 28, 28)) * 100 + 100 * labels[:, :, None]).astype(np.uint8)
        arrays[f"{split}_labels"] = labels
    npz = tmp_path / "pneumoniamnist.npz"
    np.savez(npz, **arrays)
    assert main(["data", "inspect", str(npz)]) == 0
    assert "pneumonia" in capsys.readouterr().out
    assert main(["train", "--data", str(npz), "--out", str(tmp_path / "run"), "--epochs", "1", "--size", "28"]) == 0
    assert json.loads((tmp_path / "run" / "data_summary.json").read_text())["label_names"] == ["pneumonia"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("train: {epochs: two}", "train.epochs: expected an integer, got 'two' (str)"),
        ('train: {lr: "fast"}', "train.lr: expected a number, got 'fast' (str)"),
        ("data: {image_size: 64}", "data.image_size: expected a list of two integers [height, width], got 64 (int)"),
    ],
)
def test_wrong_types_in_a_config_file_name_key_value_and_type(tmp_path, capsys, text, message):
    config = tmp_path / "c.yaml"
    config.write_text(text + "\n")
    assert main(["train", "--config", str(config), "--data", str(tmp_path), "--out", str(tmp_path / "run")]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert message in err and "Traceback" not in err


def test_identical_images_in_two_splits_are_refused_and_named(tmp_path, phantom, capsys):
    data = tmp_path / "data"
    shutil.copytree(phantom, data)
    table = (data / "labels.csv").read_text().splitlines()
    header, rows = table[0], table[1:]
    # One image copied under every patient's first study: a random patient-level split must separate copies.
    first = rows[0].split(",")[0]
    copied = set()
    for row in rows:
        path, patient = row.split(",")[:2]
        if patient not in copied and path != first:
            shutil.copy(data / first, data / path)
            copied.add(patient)
    args = ["train", "--data", str(data), "--out", str(tmp_path / "run"), "--size", "32", "--epochs", "1"]
    assert main(args) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "split refused" in err and "identical image(s) in more than one split" in err and first in err
    assert not (tmp_path / "run").exists() and header.startswith("path")


def test_data_summary_records_what_was_checked(phantom, tmp_path):
    args = ["train", "--data", str(phantom), "--out", str(tmp_path / "run"), "--size", "32", "--epochs", "1"]
    assert main([*args, "--precision", "32"]) == 0
    checks = json.loads((tmp_path / "run" / "data_summary.json").read_text())["leakage_checks"]
    assert [c["check"] for c in checks] == ["patients", "identical images"]
    assert checks[1]["checked"].endswith("XXH3-128 of the model-input pixels") and all(c["passed"] for c in checks)


def test_k_fold_cross_validation_trains_every_fold_and_pools_them(phantom, tmp_path, capsys):
    out = tmp_path / "cv"
    args = ["train", "--data", str(phantom), "--out", str(out), "--size", "32", "--epochs", "1", "--folds", "3"]
    assert main([*args, "--precision", "32"]) == 0
    summary = json.loads((out / "folds.json").read_text())
    assert [f["fold"] for f in summary["folds"]] == [1, 2, 3]
    n_images = len((phantom / "labels.csv").read_text().splitlines()) - 1
    assert summary["pooled"]["n_images"] == n_images == sum(f["n_images"] for f in summary["folds"])
    tests = [yaml.safe_load((out / f"fold_{k}" / "config.yaml").read_text())["data"]["fold"] for k in (1, 2, 3)]
    assert tests == [1, 2, 3]
    assert "pooled out-of-fold" in capsys.readouterr().out
