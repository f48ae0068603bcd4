"""kill -9 in the middle of an epoch, then --resume: the run finishes with the right epoch count and valid weights."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radcnn.config import DataConfig, RunConfig, TrainConfig
from radcnn.errors import RunDirectoryError
from radcnn.models.checkpoint import load_model
from radcnn.training.fit import fit, partial_dir

NPZ = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "pneumoniamnist_dev.npz"

SCRIPT = """
import sys
from radcnn.config import DataConfig, RunConfig, TrainConfig
from radcnn.training.fit import fit
config = RunConfig(
    data=DataConfig(source=sys.argv[1], image_size=(28, 28), label_columns=("pneumonia",)),
    train=TrainConfig(epochs=3, batch_size=8, progress_bar=False, precision="32"),
)
fit(config, sys.argv[2])
"""


def _config():
    return RunConfig(
        data=DataConfig(source=str(NPZ), image_size=(28, 28), label_columns=("pneumonia",)),
        train=TrainConfig(epochs=3, batch_size=8, progress_bar=False, precision="32"),
    )


@pytest.mark.slow
def test_kill_9_mid_epoch_then_resume_finishes_the_run(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(NPZ), str(run)], env=env)
    checkpoint = partial_dir(run) / "checkpoints" / "last.ckpt"
    deadline = time.time() + 240
    while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert checkpoint.exists(), "no checkpoint was written after the first epoch"
    time.sleep(1.0)  # well inside the second epoch (an epoch takes several seconds at batch size 8)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not run.exists()

    with pytest.raises(RunDirectoryError, match="interrupted run"):
        fit(_config(), run)  # refuses to silently start over
    result = fit(_config(), run, resume=True)
    assert result.epochs_run == 3
    log = pd.read_csv(run / "logs" / "metrics.csv")
    assert sorted(log["epoch"].dropna().unique().astype(int)) == [0, 1, 2]
    model, spec = load_model(run / "best_model.safetensors")
    assert all(np.isfinite(v.numpy()).all() for v in model.state_dict().values())
    assert not partial_dir(run).exists()


def test_resume_without_an_interrupted_run_is_refused(tmp_path):
    with pytest.raises(RunDirectoryError, match="nothing to resume"):
        fit(_config(), tmp_path / "run", resume=True)
