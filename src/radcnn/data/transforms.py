"""`preprocess`: a reader's (H, W) image → the model's (1, H', W') input. Used by the cache and at inference.

Resizing is a plain stretch to `size` (no crop, no letterbox): chest radiographs are near-square and every public
CXR model resizes this way. Shrinking uses Pillow's BOX filter, which is exact area averaging (each output pixel
is the mean of the input area it covers), so no aliasing from fine noise or grid lines; enlarging (or a mix of
both) uses Pillow's BILINEAR, which widens its support on any shrinking axis, i.e. is antialiased. Both filters
have non-negative weights, so a [0, 1] input stays in [0, 1]. Pillow's float ("F") mode keeps full precision and
is ~20× faster than scikit-image's anti-aliased resize on a 1024² image.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from radcnn.errors import ConfigError, DataError

MAX_SIDE = 8192


def check_size(size: Sequence[int]) -> tuple[int, int]:
    """Validate an output size (height, width)."""
    try:
        height, width = (int(s) for s in size)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"image size must be (height, width), got {size!r}") from exc
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE) or tuple(size) != (height, width):
        raise ConfigError(f"image size must be two integers in 1..{MAX_SIDE}, got {size!r}")
    return height, width


def preprocess(image: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Resize a 2-D [0, 1] image to `size` = (height, width) → float32 (1, height, width) in [0, 1]."""
    from PIL import Image

    height, width = check_size(size)
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2 or arr.size == 0:
        raise DataError(f"preprocess expects a 2-D (H, W) image, got shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    low, high = float(arr.min()), float(arr.max())  # NaN propagates into both and fails the test below
    if not (low >= -1e-3 and high <= 1 + 1e-3):
        raise DataError(f"preprocess expects values in [0, 1] (the intensity convention), got {low}..{high}")
    if arr.shape == (height, width):
        out = arr.copy()
    else:
        shrink = height <= arr.shape[0] and width <= arr.shape[1]
        method = Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR
        out = np.array(Image.fromarray(arr).resize((width, height), method), dtype=np.float32)
    return np.clip(out, 0.0, 1.0, out=out)[None]
