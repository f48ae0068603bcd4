"""MedMNIST .npz reader: the real PneumoniaMNIST dev file and synthetic files with every kind of mistake."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from radcnn.data.layouts.medmnist_arrays import MedMNISTSplit, load_medmnist
from radcnn.errors import DataError

REAL = Path(__file__).parents[3] / ".." / "shared" / "data" / "pneumoniamnist_dev.npz"


def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def test_real_pneumoniamnist_dev_file():
    if not REAL.exists():
        pytest.skip(f"shared data file {REAL} is not present on this machine")
    splits = load_medmnist(REAL)
    assert {k: len(v) for k, v in splits.items()} == {"train": 3282, "val": 524, "test": 600}
    for split in splits.values():
        assert isinstance(split, MedMNISTSplit)
        assert split.images.dtype == np.float32 and split.images.shape[1:] == (28, 28)
        assert split.images.min() >= 0 and split.images.max() <= 1
        assert split.labels.dtype == np.float32 and split.labels.shape[1] == 1
        assert set(np.unique(split.labels)) == {0.0, 1.0}
    raw = np.load(REAL)
    np.testing.assert_allclose(splits["val"].images, raw["val_images"] / 255.0, atol=1e-7)


def test_synthetic_file_any_size_and_multilabel(tmp_path):
    rng = np.random.default_rng(0)
    path = _npz(
        tmp_path / "x.npz",
        train_images=rng.integers(0, 256, (5, 64, 48), dtype=np.uint8),
        train_labels=rng.integers(0, 2, (5, 14), dtype=np.uint8),
        test_images=rng.integers(0, 256, (2, 64, 48), dtype=np.uint8),
        test_labels=rng.integers(0, 2, (2, 14), dtype=np.uint8),
    )
    splits = load_medmnist(path)
    assert set(splits) == {"train", "test"}
    assert splits["train"].images.shape == (5, 64, 48) and splits["train"].labels.shape == (5, 14)


def test_rgb_images_become_luma(tmp_path, caplog):
    rgb = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 255, 0, 0
    splits = load_medmnist(_npz(tmp_path / "rgb.npz", train_images=rgb, train_labels=np.array([0, 3])))
    np.testing.assert_allclose(splits["train"].images, 0.299, atol=1e-6)
    np.testing.assert_array_equal(splits["train"].labels, [[0.0], [3.0]])  # (N,) → (N, 1), class index kept
    assert "converted to grayscale" in caplog.text


def test_missing_train_key(tmp_path):
    path = _npz(tmp_path / "m.npz", train_images=np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(DataError, match=r"m\.npz: missing key train_labels"):
        load_medmnist(path)


def test_missing_partner_key(tmp_path):
    path = _npz(
        tmp_path / "p.npz",
        train_images=np.zeros((2, 4, 4), np.uint8),
        train_labels=np.zeros((2, 1), np.uint8),
        val_labels=np.zeros((1, 1), np.uint8),
    )
    with pytest.raises(DataError, match=r"p\.npz: key 'val_images' is missing although 'val_labels' is present"):
        load_medmnist(path)


def test_mismatched_lengths(tmp_path):
    path = _npz(tmp_path / "l.npz", train_images=np.zeros((3, 4, 4), np.uint8), train_labels=np.zeros((2, 1)))
    with pytest.raises(DataError, match=r"l\.npz: train_images has 3 images but train_labels has 2 rows"):
        load_medmnist(path)


def test_3d_volumes_refused(tmp_path):
    path = _npz(tmp_path / "v.npz", train_images=np.zeros((2, 8, 8, 8), np.uint8), train_labels=np.zeros((2, 1)))
    with pytest.raises(DataError, match=r"v\.npz: train_images has shape \(2, 8, 8, 8\)"):
        load_medmnist(path)


def test_not_an_npz(tmp_path):
    (tmp_path / "t.npz").write_text("hello")
    with pytest.raises(DataError, match=r"t\.npz: not a readable \.npz archive"):
        load_medmnist(tmp_path / "t.npz")
    with pytest.raises(DataError, match="not found"):
        load_medmnist(tmp_path / "absent.npz")
