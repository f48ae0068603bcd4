"""Intensity windowing into [0, 1]: the VOI step shared by every reader.

Formulas follow DICOM PS3.3 C.11.2.1.2 with the output range [0, 1]:

* LINEAR (the DICOM default for a window stored in a file):
  ``y = clip((x - (c - 0.5)) / (w - 1) + 0.5, 0, 1)``, w >= 1 (w == 1 is a threshold at c - 0.5);
* LINEAR_EXACT (also used for every window a caller passes explicitly, since such windows may be fractional):
  ``y = clip((x - c) / w + 0.5, 0, 1)``, w > 0 — so ``c - w/2`` maps to 0 and ``c + w/2`` to 1;
* SIGMOID: ``y = 1 / (1 + exp(-4 (x - c) / w))``, w > 0.

All arithmetic is float32 and in place where possible: these run on every pixel of 1024² images in the cache
workers, where a float64 temporary per step would double the per-file cost.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np

from radcnn.errors import ConfigError, ImageReadError

Window = Literal["stored", "full"] | tuple[float, float]
VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")


def check_window(window: object) -> Window:
    """Validate a `window` argument: "stored", "full" or a (center, width) pair with a finite width > 0."""
    if isinstance(window, str):
        if window in ("stored", "full"):
            return window
        raise ConfigError(f"window must be 'stored', 'full' or (center, width); got {window!r}")
    try:
        center, width = (float(v) for v in window)  # type: ignore[union-attr]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"window must be 'stored', 'full' or (center, width); got {window!r}") from exc
    if not (math.isfinite(center) and math.isfinite(width) and width > 0):
        raise ConfigError(f"window (center, width) needs finite values and width > 0; got {window!r}")
    return (center, width)


def window_problem(center: float, width: float, function: str) -> str | None:
    """Why a (center, width, function) triple from a file is unusable, or None when it is fine."""
    if function not in VOI_FUNCTIONS:
        return f"VOILUTFunction {function!r} is not one of {', '.join(VOI_FUNCTIONS)}"
    if not (math.isfinite(center) and math.isfinite(width)):
        return f"window center/width ({center}, {width}) is not finite"
    if function == "LINEAR" and width < 1:
        return f"window width {width} < 1 is invalid for LINEAR"
    if width <= 0:
        return f"window width {width} <= 0 is invalid"
    return None


def _working_copy(values: np.ndarray, inplace: bool) -> np.ndarray:
    if inplace and values.dtype == np.float32 and values.flags.writeable:
        return values
    return np.array(values, dtype=np.float32, copy=True)


def apply_window(
    values: np.ndarray, center: float, width: float, function: str = "LINEAR", *, inplace: bool = False
) -> np.ndarray:
    """Map `values` (modality units) into [0, 1] with a VOI window.

    Returns a new float32 array, or `values` itself when ``inplace`` and it is a writeable float32 array.
    """
    out = _working_copy(values, inplace)
    if function == "LINEAR":
        if width == 1:  # the standard's threshold case: the formula would divide by zero
            return (out > np.float32(center - 0.5)).astype(np.float32)
        scale, offset = 1.0 / (width - 1.0), 0.5 - (center - 0.5) / (width - 1.0)
    elif function == "LINEAR_EXACT":
        scale, offset = 1.0 / width, 0.5 - center / width
    elif function == "SIGMOID":
        out -= np.float32(center)
        out *= np.float32(-4.0 / width)
        np.exp(out, out=out)
        out += np.float32(1.0)
        return np.reciprocal(out, out=out)
    else:
        raise ValueError(f"unknown VOI function {function!r}")
    out *= np.float32(scale)
    out += np.float32(offset)
    return np.clip(out, 0.0, 1.0, out=out)


def apply_full_range(
    values: np.ndarray, mask: np.ndarray | None = None, *, inplace: bool = False
) -> tuple[np.ndarray, bool]:
    """Map min..max of `values` (where `mask` is True, if given) onto [0, 1].

    Returns the float32 image and whether the range was empty (constant image → all zeros).
    """
    selected = values if mask is None else values[mask]
    if selected.size == 0:
        return np.zeros(values.shape, dtype=np.float32), True
    low, high = float(selected.min()), float(selected.max())
    if not high > low:
        return np.zeros(values.shape, dtype=np.float32), True
    out = _working_copy(values, inplace)
    out -= np.float32(low)
    out *= np.float32(1.0 / (high - low))
    return np.clip(out, 0.0, 1.0, out=out), False


def scale_nominal(values: np.ndarray, maximum: float) -> np.ndarray:
    """Integers of a fixed bit depth divided by their nominal maximum (255, 65535, 2**bits - 1)."""
    out = np.multiply(values, np.float32(1.0 / maximum), dtype=np.float32)
    return np.clip(out, 0.0, 1.0, out=out)


def require_finite(path: Path, values: np.ndarray) -> None:
    """Float pixel data may hold NaN/Inf; the convention has no place for them, so refuse with a count."""
    if np.issubdtype(values.dtype, np.floating):
        bad = int(values.size - np.count_nonzero(np.isfinite(values)))
        if bad:
            raise ImageReadError(path, f"{bad} of {values.size} pixel values are NaN or Inf")


def luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of an (H, W, 3) array, float32 in the input's units (no rounding to 8 bits)."""
    rgb = np.asarray(rgb)
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.tensordot(rgb[..., :3].astype(np.float32, copy=False), weights, axes=([-1], [0])).astype(
        np.float32, copy=False
    )
