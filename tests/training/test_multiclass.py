"""Multi-class heads: one column of class indices → softmax, cross-entropy, arg-max decisions."""

import numpy as np
import pytest

from radcnn.config import DataConfig, RunConfig, TrainConfig
from radcnn.errors import ConfigError
from radcnn.reporting.evaluate_run import evaluate_run, one_hot
from radcnn.serve.predictor import Predictor
from radcnn.training.fit import fit, resolve_task


def _three_class_npz(path, seed=0):
    """Class k has a bright square in band k of the image (rows 0-9, 10-19, 20-27): easy to learn."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", 240), ("val", 60), ("test", 60)):
        labels = np.tile(np.arange(3), n // 3)
        images = (rng.random((n, 28, 28)) * 80).astype(np.uint8)
        for i, k in enumerate(labels):
            images[i, 10 * k : 10 * k + 6, 8:20] = 230
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels[:, None].astype(np.uint8)
    np.savez(path, **arrays)
    return path


def test_task_resolution():
    assert resolve_task("auto", np.array([[0.0], [1.0]]), ("y",)) == ("binary", ("y",))
    assert resolve_task("auto", np.array([[0.0], [2.0], [1.0]]), ("y",)) == ("multiclass", ("y=0", "y=1", "y=2"))
    with pytest.raises(ConfigError):
        resolve_task("multiclass", np.zeros((3, 2)), ("a", "b"))


def test_one_hot_keeps_unknown_rows_unknown():
    out = one_hot(np.array([2.0, np.nan, 0.0]), 3)
    assert out[0].tolist() == [0, 0, 1] and np.isnan(out[1]).all() and out[2].tolist() == [1, 0, 0]


def test_multiclass_training_evaluation_and_prediction(tmp_path):
    npz = _three_class_npz(tmp_path / "three.npz")
    config = RunConfig(
        data=DataConfig(source=str(npz), image_size=(28, 28)),
        train=TrainConfig(epochs=3, progress_bar=False, precision="32"),
    )
    result = fit(config, tmp_path / "run")
    # an .npz radcnn does not know by name: one label column of class indices, named "label"
    assert result.spec.task == "multiclass" and result.spec.label_names == ("label=0", "label=1", "label=2")
    metrics = evaluate_run(tmp_path / "run", n_boot=0).metrics
    assert metrics["multiclass"]["accuracy_argmax"] > 0.9
    assert set(metrics["labels"]) == {"label=0", "label=1", "label=2"}
    probs = Predictor.from_path(tmp_path / "run").predict_batch(np.zeros((2, 1, 28, 28), dtype=np.float32))
    assert probs.shape == (2, 3) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_multilabel_trains_and_is_scored_per_label(tmp_path):
    """Three independent labels (N×3, ChestMNIST-style) through training and evaluation, scored per label."""
    rng = np.random.default_rng(1)
    arrays = {}
    for split, n in (("train", 240), ("val", 60), ("test", 60)):
        labels = (rng.random((n, 3)) < 0.5).astype(np.uint8)
        images = (rng.random((n, 28, 28)) * 80).astype(np.uint8)
        for i in range(n):
            for k in range(3):
                if labels[i, k]:
                    images[i, 10 * k : 10 * k + 6, 8:20] = 230
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
    npz = tmp_path / "multi.npz"
    np.savez(npz, **arrays)
    config = RunConfig(
        data=DataConfig(source=str(npz), image_size=(28, 28)),
        train=TrainConfig(epochs=3, progress_bar=False, precision="32"),
    )
    result = fit(config, tmp_path / "run")
    assert result.spec.task == "binary" and result.spec.label_names == ("label_0", "label_1", "label_2")
    assert len(result.spec.thresholds) == 3
    metrics = evaluate_run(tmp_path / "run", n_boot=0).metrics
    assert set(metrics["labels"]) == {"label_0", "label_1", "label_2"}
    assert all(entry["metrics"]["roc_auc"] > 0.8 for entry in metrics["labels"].values())
