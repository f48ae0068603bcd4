"""A NaN loss stops training with the epoch and batch, and keeps the last good checkpoint for --resume."""

import numpy as np
import pandas as pd
import pytest

from radcnn.config import DataConfig, RunConfig, TrainConfig
from radcnn.data.manifest import Manifest
from radcnn.data.prepare import _assemble
from radcnn.errors import TrainingError
from radcnn.runs import partial_dir
from radcnn.training.fit import fit


def _data(poison_after_epoch_one: dict):
    rng = np.random.default_rng(0)
    n = 96
    images = rng.random((n, 1, 28, 28), dtype=np.float32)
    labels = (np.arange(n) % 2).astype(np.float32)[:, None]
    table = pd.DataFrame({"path": [f"i{i}" for i in range(n)], "patient_id": [f"p{i}" for i in range(n)]})
    table["y"] = labels[:, 0]
    parts = np.array(["train"] * 64 + ["val"] * 16 + ["test"] * 16)

    class PoisonedImages:
        """Training images turn NaN from the second epoch on (a corrupt input discovered late)."""

        shape = images.shape

        def __len__(self):
            return n

        def __getitem__(self, index):
            out = images[index].copy()
            if poison_after_epoch_one["calls"] >= 4:  # 2 train batches + 1 val batch per epoch
                out[:] = np.nan
            poison_after_epoch_one["calls"] += 1
            return out

    return _assemble(Manifest(table, ("y",)), PoisonedImages(), parts, [])


def test_nan_loss_names_epoch_and_batch_and_keeps_the_checkpoint(tmp_path):
    state = {"calls": 0}
    config = RunConfig(
        data=DataConfig(source="in-memory.npz", image_size=(28, 28), label_columns=("y",)),
        train=TrainConfig(epochs=3, batch_size=32, progress_bar=False, precision="32"),
    )
    with pytest.raises(TrainingError, match=r"loss became nan at epoch 2, batch \d+"):
        fit(config, tmp_path / "run", data=_data(state))
    assert not (tmp_path / "run").exists()
    assert (partial_dir(tmp_path / "run") / "checkpoints" / "last.ckpt").is_file()
    assert (partial_dir(tmp_path / "run") / "best_model.safetensors").is_file()
