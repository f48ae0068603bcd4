"""Heat maps for served predictions: computed through `radcnn.explain`, drawn as PNG overlays.

Only the methods fast enough to answer an interactive request are offered (`HEATMAP_METHODS`: one backward pass
for Grad-CAM and Grad-CAM++, 32 for Integrated Gradients); the perturbation methods take seconds to minutes
per image and stay in `radcnn explain`. Maps keep only evidence *for* the label (negative attributions are
dropped) and are scaled per image to [0, 1]: the overlay shows where the model looked, not how strongly in
absolute terms (the probability says that).
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn

from radcnn.errors import ConfigError
from radcnn.models.spec import ModelSpec
from radcnn.serve.prediction import Heatmap

HEATMAP_METHODS = ("gradcam", "gradcam_pp", "integrated_gradients")
COLORMAP = "inferno"


def check_method(method: str) -> str:
    if method not in HEATMAP_METHODS:
        raise ConfigError(f"unknown heat-map method {method!r}; choose one of: {', '.join(HEATMAP_METHODS)}")
    return method


def compute_heatmaps(
    model: nn.Module, spec: ModelSpec, inputs: np.ndarray, method: str, label: str | None = None
) -> list[Heatmap]:
    """One heat map per input (N, C, H, W) for `label` (default: the only label, else each image's most probable)."""
    from radcnn.explain.registry import ExplainSettings, get_explainer
    from radcnn.explain.targets import ScoredModel, resolve_targets

    check_method(method)
    target = ScoredModel(model, spec)
    images = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
    targets = resolve_targets(spec, label, target.predict(images))
    maps = get_explainer(method).builder(
        target, images, torch.from_numpy(targets), ExplainSettings(), [0] * len(images)
    )
    return [
        Heatmap(method, spec.label_names[int(t)], _unit_scaled(np.asarray(m, dtype=np.float32)))
        for m, t in zip(maps, targets, strict=True)
    ]


def _unit_scaled(values: np.ndarray) -> np.ndarray:
    values = np.nan_to_num(np.clip(values, 0.0, None), nan=0.0, posinf=0.0)
    peak = float(values.max()) if values.size else 0.0
    return (values / peak).astype(np.float32) if peak > 0 else np.zeros_like(values, dtype=np.float32)


def _colours(values: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1] → (H, W, 3) uint8 through the colour map."""
    from matplotlib import colormaps

    return (colormaps[COLORMAP](np.clip(values, 0.0, 1.0))[..., :3] * 255).round().astype(np.uint8)


def _resized(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if values.shape == tuple(shape):
        return values
    resized = Image.fromarray(values.astype(np.float32)).resize((shape[1], shape[0]), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def overlay_png(heatmap: Heatmap, shape: tuple[int, int] | None = None) -> bytes:
    """An RGBA PNG of the map (alpha = the map itself, so where the model did not look stays transparent).

    `shape` (H, W) resizes it to the displayed image; the viewer stretches it over the radiograph either way,
    because the model's input is the radiograph stretched to a square.
    """
    values = _resized(heatmap.values, shape) if shape else heatmap.values
    rgba = np.dstack([_colours(values), (values * 255).round().astype(np.uint8)])
    buffer = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buffer, format="PNG")
    return buffer.getvalue()


def blended_rgb(image: np.ndarray, heatmap: Heatmap, *, opacity: float = 0.45, caption: str = "") -> np.ndarray:
    """The grayscale image with the coloured map blended in (weight `opacity` × map) and a burned-in caption."""
    gray = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    values = _resized(heatmap.values, gray.shape)
    weight = (opacity * values)[..., None]
    rgb = (1 - weight) * (gray[..., None] * 255) + weight * _colours(values)
    out = Image.fromarray(np.clip(rgb.round(), 0, 255).astype(np.uint8), mode="RGB")
    if caption:
        draw = ImageDraw.Draw(out)
        size = max(10, out.height // 40)
        draw.rectangle((0, 0, out.width, size + 6), fill=(0, 0, 0))
        draw.text((4, 2), caption, fill=(255, 255, 0), font_size=size)
    return np.asarray(out)
