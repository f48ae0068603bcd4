"""Data-parallel training with Lightning's DDP strategy: 2 CPU processes talking over gloo on loopback."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radcnn.config import DataConfig, RunConfig, TrainConfig
from radcnn.models.checkpoint import load_model
from radcnn.training.fit import fit

NPZ = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "pneumoniamnist_dev.npz"


@pytest.fixture
def small_npz(tmp_path):
    source = np.load(NPZ)
    sizes = {"train": 320, "val": 96, "test": 64}
    arrays = {}
    for split, n in sizes.items():
        labels = source[f"{split}_labels"][:, 0]
        # Half normal, half pneumonia: the dev train copy is 90% pneumonia, so a prefix would be one class.
        rows = np.concatenate([np.flatnonzero(labels == c)[: n // 2] for c in (0, 1)])
        arrays[f"{split}_images"] = source[f"{split}_images"][rows]
        arrays[f"{split}_labels"] = source[f"{split}_labels"][rows]
    path = tmp_path / "small.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.slow
def test_two_process_ddp_trains_each_process_on_half_the_batches(small_npz, tmp_path):
    batch = 16
    config = RunConfig(
        data=DataConfig(source=str(small_npz), image_size=(28, 28), label_columns=("pneumonia",)),
        train=TrainConfig(epochs=2, batch_size=batch, devices=2, progress_bar=False, precision="32"),
    )
    result = fit(config, tmp_path / "ddp")
    log = pd.read_csv(tmp_path / "ddp" / "logs" / "metrics.csv")
    steps_per_epoch = math.ceil(320 / 2 / batch)  # the distributed sampler gives each process half the images
    assert int(log["step"].max()) + 1 == 2 * steps_per_epoch
    assert result.best_val_auc is not None and result.best_val_auc > 0.5
    model, spec = load_model(tmp_path / "ddp" / "best_model.safetensors")
    assert spec.thresholds[0] != 0.5 or spec.threshold_method.endswith("on val")
