"""The report's gallery: a few true/false positives and negatives per label, as small PNG thumbnails.

Which cases are shown is decided by `select_gallery` (a pure function of labels, probabilities and the
threshold), so the choice is reproducible and says something useful:

* true positives and true negatives: the most confident correct calls (highest / lowest probability);
* false positives: the negatives with the *highest* probability — the most convincing false alarms;
* false negatives: the positives with the *lowest* probability — the worst misses.

Ties keep the order of the predictions table. Thumbnails are made from the model's own input (the image
after the ModelSpec's preprocessing), so the reader sees what the network saw. Images come from their files
through `radcnn.data.inputs.load_input` (decrypted in memory for an encrypted run); rows without a readable file
(MedMNIST rows are addressed as ``file.npz:part[i]``) are taken from the run's rebuilt data instead.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from radcnn.data.inputs import load_input
from radcnn.encryption.files import stored_file
from radcnn.errors import DataError

log = logging.getLogger(__name__)

CATEGORIES = ("true_positive", "false_positive", "false_negative", "true_negative")
CATEGORY_TITLES = {
    "true_positive": "True positives (most confident)",
    "false_positive": "False positives (highest probability)",
    "false_negative": "False negatives (lowest probability)",
    "true_negative": "True negatives (most confident)",
}
THUMBNAIL_SIZE = 128


def select_gallery(y_true, y_prob, threshold: float, n_per_category: int) -> dict[str, list[int]]:
    """Row indexes per category (see the module docstring); rows with an unknown (NaN) label are never shown."""
    if n_per_category < 0:
        raise DataError(f"gallery size {n_per_category}: expected 0 or more images per category")
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_prob, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 1:
        raise DataError(f"gallery: labels {y.shape} and probabilities {p.shape} must be 1-D and the same length")
    rows = np.arange(y.shape[0])
    positive_call = p >= threshold
    masks = {
        "true_positive": (y == 1) & positive_call,
        "false_positive": (y == 0) & positive_call,
        "false_negative": (y == 1) & ~positive_call,
        "true_negative": (y == 0) & ~positive_call,
    }
    # Highest probability first for calls of "positive", lowest first for calls of "negative".
    descending = {"true_positive": True, "false_positive": True, "false_negative": False, "true_negative": False}
    picked: dict[str, list[int]] = {}
    for category in CATEGORIES:
        candidates = rows[masks[category]]
        keys = -p[candidates] if descending[category] else p[candidates]
        order = np.argsort(keys, kind="stable")
        picked[category] = [int(i) for i in candidates[order][:n_per_category]]
    return picked


def thumbnail_png(image: np.ndarray, size: int = THUMBNAIL_SIZE) -> bytes:
    """A (H, W) or (1, H, W) image in [0, 1] → grayscale PNG whose longer side is ``size`` pixels.

    Small model inputs (MedMNIST's 28×28) are enlarged with nearest-neighbour so no detail is invented;
    larger ones are reduced with a Lanczos filter.
    """
    array = np.asarray(image, dtype=np.float32)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise DataError(f"thumbnail: expected a (H, W) or (1, H, W) image, got shape {array.shape}")
    pixels = (np.clip(np.nan_to_num(array), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    picture = Image.fromarray(pixels, mode="L")
    return _png(_fit(picture, size))


def overlay_png(
    image: np.ndarray,
    attribution: np.ndarray,
    size: int = THUMBNAIL_SIZE,
    alpha: float = 0.55,
    limits: tuple[float, float, bool] | None = None,
) -> bytes:
    """The image in gray with an attribution map (same H×W) blended on top, coloured as `radcnn explain` does.

    Colour limits and maps come from `radcnn.explain.overlay` (0..robust max on "inferno" for non-negative maps
    such as Grad-CAM, symmetric "RdBu_r" for signed ones); opacity follows |map|, so weak regions leave the
    radiograph readable. ``limits`` (vmin, vmax, signed) fixes the scale: the gallery passes one shared by all
    its maps (`radcnn.explain.overlay.shared_limits`), so a weak map stays faint beside a strong one.
    """
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    from radcnn.explain.overlay import DIVERGING_CMAP, SEQUENTIAL_CMAP, colour_limits

    attribution = np.nan_to_num(np.asarray(attribution, dtype=np.float32))
    base = np.clip(np.nan_to_num(np.asarray(image, dtype=np.float32).reshape(attribution.shape)), 0.0, 1.0)
    vmin, vmax, signed = colour_limits(attribution) if limits is None else limits
    colour = colormaps[DIVERGING_CMAP if signed else SEQUENTIAL_CMAP](Normalize(vmin, vmax, clip=True)(attribution))
    strength = np.clip(np.abs(attribution) / max(abs(vmin), abs(vmax)), 0.0, 1.0)
    weight = alpha * strength[..., None]
    blended = (1 - weight) * base[..., None] + weight * colour[..., :3]
    picture = Image.fromarray((np.clip(blended, 0, 1) * 255 + 0.5).astype(np.uint8), mode="RGB")
    return _png(_fit(picture, size))


def _fit(picture: Image.Image, size: int) -> Image.Image:
    scale = size / max(picture.size)
    if scale == 1:
        return picture
    new_size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    method = Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS
    return picture.resize(new_size, method)


def _png(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


@dataclass
class GalleryImages:
    """Loads model-input images for rows of a split's predictions table (row order = the split's order)."""

    spec: object  # the run's ModelSpec
    key: object  # the run's key (None for a plaintext run)
    paths: list[str]
    rebuild: Callable[[], object]  # () -> images of the split, (N, 1, H, W) array-like, in predictions order
    _split_images: object | None = None

    def load(self, row: int) -> np.ndarray:
        path = self.paths[row]
        if stored_file(path) is not None:
            return load_input(path, self.spec, key=self.key).array
        if self._split_images is None:
            log.debug("gallery: %s is not a file; taking the images from the run's rebuilt data", path)
            self._split_images = self.rebuild()
            if len(self._split_images) != len(self.paths):
                raise DataError(
                    f"gallery: the rebuilt split has {len(self._split_images)} images but the predictions table "
                    f"has {len(self.paths)} rows; re-run the evaluation"
                )
        return np.asarray(self._split_images[np.array([row])][0], dtype=np.float32)


Explainer = Callable[[np.ndarray, int], np.ndarray]  # (N, 1, H, W) images, label index -> (N, H, W) heat maps


def gallery_entries(
    predictions: pd.DataFrame,
    label: str,
    label_index: int,
    threshold: float,
    n_per_category: int,
    images: GalleryImages,
    explainer: Explainer | None = None,
) -> tuple[dict[str, list[dict]], dict[str, bytes]]:
    """Gallery records per category and their PNGs keyed by a stable id (``<label>-<category>-<row>``).

    Each record holds the row, file name, probability, truth and the ids of its thumbnail and (when an
    explainer is given) its explanation overlay.
    """
    y = predictions[f"{label}_true"].to_numpy(dtype=np.float64)
    p = predictions[f"{label}_probability"].to_numpy(dtype=np.float64)
    from radcnn.explain.overlay import map_peak, shared_limits  # lazily: the explain package is heavy

    chosen = select_gallery(y, p, threshold, n_per_category)
    records: dict[str, list[dict]] = {}
    pictures: dict[str, bytes] = {}
    loaded = {category: [images.load(row) for row in rows] for category, rows in chosen.items()}
    heatmaps = {category: _explain(explainer, loaded[category], label_index, label) for category in chosen}
    # One colour scale for every heat map of this label's gallery: a normal film at p = 0.002 must not glow like a
    # confident positive, which a per-image scale (each map stretched to full colour) would make it do.
    all_maps = [m for maps in heatmaps.values() if maps is not None for m in maps]
    limits = shared_limits(all_maps) if all_maps else None
    for category, rows in chosen.items():
        records[category] = []
        for k, (row, image) in enumerate(zip(rows, loaded[category], strict=True)):
            key = f"{label}-{category}-{row}"
            pictures[key] = thumbnail_png(image)
            record = {
                "row": row,
                "file": Path(str(predictions.at[row, "path"])).name,
                "probability": float(p[row]),
                "truth": int(y[row]),
                "threshold": float(threshold),
                "decision": "positive" if p[row] >= threshold else "negative",
                "thumbnail": key,
                "explanation": None,
                "map_peak": None,
                "map_scale": None,
            }
            if heatmaps[category] is not None:
                pictures[f"{key}-cam"] = overlay_png(image, heatmaps[category][k], limits=limits)
                record["explanation"] = f"{key}-cam"
                record["map_peak"] = map_peak(heatmaps[category][k])
                record["map_scale"] = [limits[0], limits[1]]
            records[category].append(record)
    return records, pictures


def _explain(explainer: Explainer | None, loaded: list[np.ndarray], label_index: int, label: str):
    if explainer is None or not loaded:
        return None
    batch = np.stack([np.asarray(image, dtype=np.float32).reshape(1, *image.shape[-2:]) for image in loaded])
    heatmaps = np.asarray(explainer(batch, label_index), dtype=np.float32)
    if heatmaps.shape != (len(loaded), *batch.shape[-2:]):
        raise DataError(
            f"explanations for {label!r}: expected heat maps of shape {(len(loaded), *batch.shape[-2:])}, "
            f"got {heatmaps.shape}"
        )
    return heatmaps
