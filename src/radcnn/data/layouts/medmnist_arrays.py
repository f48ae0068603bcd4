"""MedMNIST .npz reader: the official ``{split}_images`` / ``{split}_labels`` arrays as radcnn arrays.

Dataset card (MedMNIST v2, Yang et al., Scientific Data 10, 41 (2023); CC BY 4.0): ten 2-D biomedical datasets
(PneumoniaMNIST, ChestMNIST, ...) at 28×28 (MedMNIST+ also 64, 128, 224), one .npz per dataset with keys
``train_images``, ``train_labels``, ``val_*``, ``test_*``; images uint8 (N, H, W) grayscale or (N, H, W, 3) RGB,
labels integer (N, C) — one column holding the class index for binary/multi-class sets, C binary columns for
multi-label sets (ChestMNIST). Only the 2-D sets are read here; the 3-D ones (N, D, H, W) are refused.

Output follows the intensity convention: images float32 (N, H, W) in [0, 1] (uint8 / 255; RGB → BT.601 luma,
logged), labels float32 (N, C) exactly as stored (class indices are not one-hot encoded).
"""

from __future__ import annotations

import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radcnn.data.readers.windowing import luma
from radcnn.errors import DataError

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class MedMNISTSplit:
    """One split: images float32 (N, H, W) in [0, 1], labels float32 (N, C)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def load_medmnist(path: str | os.PathLike[str]) -> dict[str, MedMNISTSplit]:
    """Load the splits present in a MedMNIST .npz ("train" required, "val"/"test" when present)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: MedMNIST file not found" if not path.exists() else f"{path}: not a file")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz archive ({type(exc).__name__}: {exc})") from exc
    with archive:
        keys = set(archive.files)
        if "train_images" not in keys or "train_labels" not in keys:
            missing = [k for k in ("train_images", "train_labels") if k not in keys]
            raise DataError(
                f"{path}: missing key {', '.join(missing)}; a MedMNIST file has train_images/train_labels "
                f"(found: {', '.join(sorted(keys)) or 'no arrays'})"
            )
        splits: dict[str, MedMNISTSplit] = {}
        shape = None
        for split in SPLITS:
            image_key, label_key = f"{split}_images", f"{split}_labels"
            if image_key not in keys and label_key not in keys:
                continue
            for key, other in ((image_key, label_key), (label_key, image_key)):
                if key not in keys:
                    raise DataError(f"{path}: key {key!r} is missing although {other!r} is present")
            images = _images(path, image_key, _load(path, archive, image_key))
            labels = _labels(path, label_key, _load(path, archive, label_key))
            if len(images) != len(labels):
                raise DataError(f"{path}: {image_key} has {len(images)} images but {label_key} has {len(labels)} rows")
            if shape is not None and images.shape[1:] != shape:
                raise DataError(f"{path}: {image_key} images are {images.shape[1:]}, other splits {shape}")
            shape = images.shape[1:]
            splits[split] = MedMNISTSplit(images=images, labels=labels)
    widths = {s.labels.shape[1] for s in splits.values()}
    if len(widths) > 1:
        raise DataError(f"{path}: label columns differ between splits: {sorted(widths)}")
    return splits


def _load(path: Path, archive, key: str) -> np.ndarray:
    try:
        return archive[key]
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: array {key!r} cannot be read ({type(exc).__name__}: {exc})") from exc


def _images(path: Path, key: str, arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 4 and arr.shape[-1] in (3, 4):
        log.warning("%s: %s are RGB; converted to grayscale (BT.601 luma)", path, key)
        arr = luma(arr[..., :3])
        maximum = 255.0
    elif arr.ndim == 3:
        maximum = _nominal_maximum(path, key, arr)
    else:
        raise DataError(
            f"{path}: {key} has shape {arr.shape}; expected (N, H, W) or (N, H, W, 3) 2-D images "
            "(3-D MedMNIST volumes are not supported)"
        )
    if len(arr) == 0:
        raise DataError(f"{path}: {key} is empty")
    out = np.asarray(arr, dtype=np.float32)
    if not np.isfinite(out).all():
        raise DataError(f"{path}: {key} contains NaN or Inf")
    if maximum != 1.0:
        out = out / np.float32(maximum)
    if out.min() < 0 or out.max() > 1:
        raise DataError(f"{path}: {key} values span {out.min()}..{out.max()}, expected 0..{maximum:g}")
    return out


def _nominal_maximum(path: Path, key: str, arr: np.ndarray) -> float:
    if arr.dtype == np.uint8:
        return 255.0
    if arr.dtype == np.uint16:
        return 65535.0
    if np.issubdtype(arr.dtype, np.floating):
        return 1.0  # float images must already be in [0, 1]; checked by the caller
    raise DataError(f"{path}: {key} has dtype {arr.dtype}; expected uint8, uint16 or float in [0, 1]")


def _labels(path: Path, key: str, arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise DataError(f"{path}: {key} has shape {arr.shape}; expected (N,) or (N, C)")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise DataError(f"{path}: {key} has dtype {arr.dtype}; expected numbers")
    return np.asarray(arr, dtype=np.float32)
