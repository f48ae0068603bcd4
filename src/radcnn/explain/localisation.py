"""Localisation: does the map point at the lesion? Pointing game and attribution mass inside boxes or masks.

* Pointing game (Zhang et al. 2016): a hit when the map's maximum falls inside a lesion or within `tolerance`
  pixels of it. The paper's (and TorchRay's) tolerance is 15 pixels at 224×224; `standard_tolerance` scales it to
  other input sizes. A map with no unique signal (all values equal) is a miss.
* Mass inside: the share of the map's positive mass (evidence *for* the target) that lies inside the lesions.
  Its chance level is the lesions' share of the image area, reported beside it.

Boxes come in image pixels as (x0, y0, x1, y1) with x to the right and y down; a pixel (row r, column c) is inside
when its centre (c + 0.5, r + 0.5) is. Ground truth is read from the synthetic phantoms' ``boxes`` column (a JSON
list of {"label", "x0", "y0", "x1", "y1"}) and from NIH ChestX-ray14 ``BBox_List_2017.csv`` (x, y, w, h).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from radcnn.errors import ManifestError

NIH_BBOX_COLUMNS = ("Image Index", "Finding Label", "Bbox [x", "y", "w", "h]")
# NIH ChestX-ray14 images are all stored at 1024 × 1024; the boxes are in that frame.
NIH_IMAGE_SIZE = (1024, 1024)


@dataclass(frozen=True)
class Box:
    """A lesion box in pixel coordinates of some image (x to the right, y down, x1 > x0, y1 > y0)."""

    x0: float
    y0: float
    x1: float
    y1: float
    label: str = ""

    def scaled(self, from_size: tuple[int, int], to_size: tuple[int, int]) -> Box:
        """The same box after the image is stretched from (H, W) `from_size` to `to_size` (plain resize)."""
        sy, sx = to_size[0] / from_size[0], to_size[1] / from_size[1]
        return Box(self.x0 * sx, self.y0 * sy, self.x1 * sx, self.y1 * sy, self.label)


def boxes_mask(boxes: list[Box], shape: tuple[int, int]) -> np.ndarray:
    """Boolean (H, W) mask of the pixels whose centres lie inside any box."""
    h, w = shape
    mask = np.zeros((h, w), dtype=bool)
    for box in boxes:
        # Pixel c has centre c + 0.5: inside when x0 <= c + 0.5 < x1, i.e. c from ceil(x0 - 0.5) to ceil(x1 - 0.5).
        c0, c1 = _span(box.x0, box.x1, w)
        r0, r1 = _span(box.y0, box.y1, h)
        if c1 > c0 and r1 > r0:
            mask[r0:r1, c0:c1] = True
    return mask


def _span(low: float, high: float, limit: int) -> tuple[int, int]:
    """Pixel indices [start, stop) whose centres lie in [low, high); a box thinner than a pixel (a small lesion
    after downscaling) still covers the pixel that contains its centre."""
    start, stop = math.ceil(low - 0.5), math.ceil(high - 0.5)
    if stop <= start:
        start = math.floor((low + high) / 2)
        stop = start + 1
    return max(0, start), min(limit, stop)


def standard_tolerance(shape: tuple[int, int]) -> float:
    """The pointing game's 15-pixel tolerance at 224×224, scaled to an image of `shape` (shorter side)."""
    return 15.0 * min(shape) / 224.0


def pointing_game(attribution: np.ndarray, mask: np.ndarray, *, tolerance: float = 0.0) -> bool:
    """True when the map's maximum lies in `mask` (or within `tolerance` pixels of it); ties: any maximum counts."""
    attribution = np.asarray(attribution, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    if attribution.shape != mask.shape:
        raise ValueError(f"map shape {attribution.shape} does not match the mask {mask.shape}")
    if not mask.any() or not np.isfinite(attribution).all() or attribution.max() == attribution.min():
        return False
    peaks = attribution == attribution.max()
    if tolerance > 0:
        mask = _dilate(mask, tolerance)
    return bool((peaks & mask).any())


def _dilate(mask: np.ndarray, radius: float) -> np.ndarray:
    from scipy import ndimage

    r = int(math.ceil(radius))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return ndimage.binary_dilation(mask, structure=(yy**2 + xx**2) <= radius**2)


def mass_inside(attribution: np.ndarray, mask: np.ndarray) -> float:
    """Share of the positive attribution mass inside `mask`; NaN when the map has no positive mass."""
    attribution = np.asarray(attribution, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    if attribution.shape != mask.shape:
        raise ValueError(f"map shape {attribution.shape} does not match the mask {mask.shape}")
    positive = np.clip(attribution, 0.0, None)
    total = positive.sum()
    return float(positive[mask].sum() / total) if total > 0 else float("nan")


def parse_boxes(text: str, *, path: str | Path | None = None, row: int | None = None) -> list[Box]:
    """The synthetic phantoms' ``boxes`` cell: a JSON list of {"label", "x0", "y0", "x1", "y1"}; blank = none."""
    if text is None or (isinstance(text, float) and math.isnan(text)) or not str(text).strip():
        return []
    try:
        items = json.loads(str(text))
        boxes = [
            Box(float(b["x0"]), float(b["y0"]), float(b["x1"]), float(b["y1"]), str(b.get("label", ""))) for b in items
        ]
    except (ValueError, TypeError, KeyError) as exc:
        raise ManifestError(
            path,
            f"boxes must be a JSON list of objects with x0, y0, x1, y1 (and label); got {str(text)[:80]!r} ({exc})",
            row=row,
            column="boxes",
        ) from None
    for box in boxes:
        if not (box.x1 > box.x0 and box.y1 > box.y0):
            raise ManifestError(path, f"box {box} has x1 <= x0 or y1 <= y0", row=row, column="boxes")
    return boxes


def read_nih_bboxes(path: str | Path) -> dict[str, list[Box]]:
    """NIH ChestX-ray14 ``BBox_List_2017.csv`` → {image file name: boxes in the 1024×1024 image frame}.

    The file's header is ``Image Index,Finding Label,Bbox [x,y,w,h]`` followed by empty columns, so the box
    columns are named "Bbox [x", "y", "w", "h]"; each row is one box with its finding as the label.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(path, "bounding-box file not found")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ManifestError(path, f"not a readable CSV file ({exc})") from None
    for column in NIH_BBOX_COLUMNS:
        if column not in table.columns:
            raise ManifestError(
                path,
                f"missing column of BBox_List_2017.csv; the file has: {', '.join(table.columns)}",
                column=column,
            )
    result: dict[str, list[Box]] = {}
    for i, row in enumerate(table.itertuples(index=False)):
        values = dict(zip(table.columns, row, strict=True))
        numbers = []
        for column in NIH_BBOX_COLUMNS[2:]:
            try:
                numbers.append(float(values[column]))
            except ValueError:
                raise ManifestError(
                    path, f"expected a number, got {values[column]!r}", row=i + 2, column=column
                ) from None
        x, y, w, h = numbers
        if w <= 0 or h <= 0:
            raise ManifestError(path, f"box width and height must be positive, got w={w}, h={h}", row=i + 2)
        name = values["Image Index"].strip()
        result.setdefault(name, []).append(Box(x, y, x + w, y + h, values["Finding Label"].strip()))
    return result
