"""Turn what a caller has — image files or arrays of any size and range — into the model's input.

Files go through `radcnn.data.inputs.load_input` — the one input path — exactly as `radcnn predict` sees them
(decrypted in memory with a key when they are encrypted at rest).
Arrays are checked against the intensity contract (float32 in [0, 1], bright = dense): integers are divided by
their type's maximum and floats outside [0, 1] are min–max rescaled, each with a warning, because a wrong range
silently changes every prediction; then they are resized to the ModelSpec's input size by `preprocess`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radcnn.data.inputs import load_input
from radcnn.data.transforms import preprocess
from radcnn.errors import DataError, ImageReadError
from radcnn.models.spec import ModelSpec

log = logging.getLogger(__name__)

ImageLike = str | os.PathLike | np.ndarray


@dataclass(frozen=True)
class PreparedImage:
    source: str  # the file path, or "array[i]"
    array: np.ndarray  # (C, H, W) float32 in [0, 1] at the model's input size
    warnings: tuple[str, ...] = ()


def split_images(images: ImageLike | Sequence[ImageLike]) -> list[ImageLike]:
    """One list item per image: a (H, W) array is one image, (N, H, W) / (N, C, H, W) arrays are N images."""
    if isinstance(images, np.ndarray):
        if images.ndim == 2:
            return [images]
        if images.ndim == 3:
            return [images] if images.shape[0] == 1 else list(images)
        if images.ndim == 4:
            return list(images)
        raise DataError(f"expected an image array of 2 to 4 dimensions, got shape {images.shape}")
    if isinstance(images, str | os.PathLike):
        return [images]
    return list(images)


def normalise_array(image: np.ndarray, name: str) -> tuple[np.ndarray, list[str]]:
    """(H, W) or (1, H, W) array → (H, W) float32 in [0, 1], with warnings for whatever had to be changed."""
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise DataError(f"{name}: expected a 2-D grayscale image (H, W) or (1, H, W), got shape {arr.shape}")
    if arr.size == 0:
        raise DataError(f"{name}: the image is empty")
    warnings: list[str] = []
    if np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
        top = 1 if arr.dtype == bool else np.iinfo(arr.dtype).max
        warnings.append(f"integer image ({arr.dtype}) scaled by 1/{top} into [0, 1]")
        return (arr.astype(np.float32) / top).astype(np.float32), warnings
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise DataError(f"{name}: pixel values contain NaN or Inf")
    low, high = float(arr.min()), float(arr.max())
    if low < 0.0 or high > 1.0:
        warnings.append(
            f"pixel range [{low:.4g}, {high:.4g}] is outside the expected [0, 1] (bright = dense); "
            "rescaled min–max into [0, 1] — check the windowing, the model was trained on [0, 1] input"
        )
        arr = (arr - low) / (high - low) if high > low else np.zeros_like(arr)
    return arr, warnings


def prepare_image(item: ImageLike, spec: ModelSpec, *, name: str, key=None) -> PreparedImage:
    """One file or array → `PreparedImage` at the spec's input size and channel count."""
    size = (int(spec.input_size[0]), int(spec.input_size[1]))
    if isinstance(item, str | os.PathLike):
        prepared = load_input(item, spec, key=key)
        array, warnings = prepared.array, list(prepared.warnings)
        source = str(item)
    else:
        image, warnings = normalise_array(item, name)
        if image.shape != size:
            warnings.append(f"image of {image.shape[0]}×{image.shape[1]} resized to the model's {size[0]}×{size[1]}")
        array = preprocess(image, size)
        source = name
    if spec.in_channels != array.shape[0]:
        array = np.repeat(array[:1], spec.in_channels, axis=0)
    for warning in warnings:
        log.warning("%s: %s", source, warning)
    return PreparedImage(source, np.ascontiguousarray(array, dtype=np.float32), tuple(warnings))


def prepare_images(
    images: ImageLike | Sequence[ImageLike], spec: ModelSpec, *, on_error: str = "fail", key=None
) -> tuple[list[PreparedImage], list[tuple[str, str]]]:
    """All images prepared; with `on_error="skip"`, unreadable files are left out and returned as (path, reason)."""
    if on_error not in ("fail", "skip"):
        raise DataError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
    prepared, skipped = [], []
    for i, item in enumerate(split_images(images)):
        name = str(item) if isinstance(item, str | os.PathLike) else f"array[{i}]"
        try:
            prepared.append(prepare_image(item, spec, name=name, key=key))
        except ImageReadError as exc:
            if on_error == "fail":
                raise
            skipped.append((str(Path(exc.path)), exc.reason))
            log.warning("skipped %s: %s", exc.path, exc.reason)
    if not prepared:
        raise DataError(
            "no image could be prepared for explanation" + (f" ({len(skipped)} skipped)" if skipped else "")
        )
    return prepared, skipped
