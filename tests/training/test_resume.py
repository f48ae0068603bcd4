"""kill -9 in the middle of an epoch, then --resume: the run finishes with the right epoch count and valid weights."""

import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from radcnn.config import DataConfig, RunConfig, TrainConfig
from radcnn.errors import RunDirectoryError
from radcnn.models.checkpoint import load_model
from radcnn.runs import partial_dir
from radcnn.training.fit import fit

SCRIPT = """
import sys, time
from pathlib import Path
from radcnn.config import DataConfig, RunConfig, TrainConfig
from radcnn.training import module
from radcnn.training.fit import fit

original_step = module.ClassifierModule.training_step

def step_then_hold(self, batch, batch_idx):
    # In the middle of the second epoch, say so and wait to be killed: the kill lands mid-epoch for certain.
    loss = original_step(self, batch, batch_idx)
    if self.current_epoch == 1 and batch_idx == 10:
        Path(sys.argv[3]).write_text("mid-epoch")
        time.sleep(600)
    return loss

module.ClassifierModule.training_step = step_then_hold
config = RunConfig(
    data=DataConfig(source=sys.argv[1], image_size=(28, 28), label_columns=("pneumonia",)),
    train=TrainConfig(epochs=3, batch_size=8, progress_bar=False, precision="32"),
)
fit(config, sys.argv[2])
"""


def _config(npz):
    return RunConfig(
        data=DataConfig(source=str(npz), image_size=(28, 28), label_columns=("pneumonia",)),
        train=TrainConfig(epochs=3, batch_size=8, progress_bar=False, precision="32"),
    )


@pytest.mark.slow
def test_kill_9_mid_epoch_then_resume_finishes_the_run(tmp_path, small_npz):
    run, marker = tmp_path / "run", tmp_path / "mid-epoch"
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(small_npz), str(run), str(marker)], stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 300
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.fail(f"training ended before it could be killed (exit {proc.returncode}): {proc.stderr.read()[-2000:]}")
    assert marker.exists(), "training never reached the middle of the second epoch"
    assert (partial_dir(run) / "checkpoints" / "last.ckpt").is_file()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not run.exists()

    proc.stderr.close()
    with pytest.raises(RunDirectoryError, match="interrupted run"):
        fit(_config(small_npz), run)  # refuses to silently start over
    result = fit(_config(small_npz), run, resume=True)
    assert result.epochs_run == 3
    log = pd.read_csv(run / "logs" / "metrics.csv")
    assert sorted(log["epoch"].dropna().unique().astype(int)) == [0, 1, 2]
    model, spec = load_model(run / "best_model.safetensors")
    assert all(np.isfinite(v.numpy()).all() for v in model.state_dict().values())
    assert not partial_dir(run).exists()


def test_resume_without_an_interrupted_run_is_refused(tmp_path, small_npz):
    with pytest.raises(RunDirectoryError, match="nothing to resume"):
        fit(_config(small_npz), tmp_path / "run", resume=True)
