"""Data-parallel training with Lightning's DDP strategy: 2 CPU processes talking over gloo on loopback."""

import math

import pandas as pd
import pytest

from radcnn.config import DataConfig, RunConfig, TrainConfig
from radcnn.models.checkpoint import load_model
from radcnn.training.fit import fit


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
