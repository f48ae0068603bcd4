"""Grad-CAM (Selvaraju et al. 2017, via Captum's LayerGradCam) and Grad-CAM++ (Chattopadhay et al. 2018).

Both weight a convolutional feature map by gradients of the target's logit and upsample the result (bilinear) to
the input size. The target layer is found automatically for any model:

1. a dry forward pass records, in the order modules *finish*, every module with a 4-D (N, C, h, w) output;
2. the last ``nn.Conv2d`` to run fixes the feature-map size (h, w);
3. the target is the last module after it that still outputs (h, w), runs once, and is neither in-place nor
   the head's global pooling.

This picks the block output that includes the last convolution (ResNet ``layer4``, DenseNet ``features`` after
``norm5``, EfficientNet ``_bn1``, the seed CNN's last ``Conv2d``) rather than literally the last ``Conv2d``: in a
DenseNet that would be a 32-channel growth layer, in a ResNet a branch without its skip connection. It also
stops before the last pooling, whose coarser map localises worse. Any module can be chosen by name instead.

Upsampling respects where each feature cell looks. Captum's `interpolate` stretches the (h, w) map over the whole
image, which is right for zero-padded networks (ResNet, DenseNet: the cells tile the image) but not for
valid-padding ones: the seed CNN's last conv map at 48×48 input covers only pixels 8.5…36.5, and stretching it
shifts a lesion near the border by up to 8 pixels. So the receptive field of two interior cells is measured once
(the support of d cell / d input) and, when both lie inside the image, the map is resampled at the true cell
centres; otherwise (receptive fields clipped by the border, i.e. padded networks) it is stretched as usual.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from radcnn.explain.registry import EXPLAINERS, ExplainSettings, ExplanationError, explainer_infos, require_captum
from radcnn.explain.targets import ScoredModel


@dataclass(frozen=True)
class FeatureLayer:
    """A module whose output is a spatial feature map, as seen in a dry forward pass."""

    name: str
    output_shape: tuple[int, ...]
    calls: int
    is_conv: bool
    inplace: bool  # also set for the head's global pooling: neither is a usable Grad-CAM target


_HEAD_POOLS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


# Layer discovery runs a forward pass; remember the answer per (model, input shape, requested name).
_CHOSEN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def feature_layers(model: nn.Module, input_shape: tuple[int, int, int]) -> list[FeatureLayer]:
    """Every named module with a 4-D output, in the order its forward finished, for one (C, H, W) input."""
    finished: dict[str, FeatureLayer] = {}
    order: list[str] = []
    handles = []

    def hook_for(name: str, module: nn.Module):
        def hook(_module, _inputs, output):
            if isinstance(output, torch.Tensor) and output.dim() == 4:
                before = finished.get(name)
                finished[name] = FeatureLayer(
                    name,
                    tuple(output.shape),
                    (before.calls if before else 0) + 1,
                    isinstance(module, nn.Conv2d),
                    bool(getattr(module, "inplace", False)) or isinstance(module, _HEAD_POOLS),
                )
                if name in order:
                    order.remove(name)
                order.append(name)

        return hook

    for name, module in model.named_modules():
        if name:
            handles.append(module.register_forward_hook(hook_for(name, module)))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *input_shape)))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return [finished[name] for name in order]


def has_conv(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def find_target_layer(model: nn.Module, input_shape: tuple[int, int, int], name: str | None = None) -> str:
    """The Grad-CAM layer's module name (see the module docstring), or `name` after checking it fits."""
    key = (tuple(input_shape), name)
    cached = _CHOSEN.get(model, {})
    if key in cached:
        return cached[key]
    if not has_conv(model):
        usable = [i.name for i in explainer_infos() if not i.extra.get("needs_conv")]
        raise ExplanationError(
            f"{type(model).__name__} has no convolutional layer, so Grad-CAM and Grad-CAM++ do not apply; "
            f"methods that do: {', '.join(usable)}"
        )
    layers = feature_layers(model, input_shape)
    if name is not None:
        chosen = _check_named(model, layers, name)
    else:
        last_conv = max(i for i, layer in enumerate(layers) if layer.is_conv)
        size = layers[last_conv].output_shape[-2:]
        candidates = [
            layer
            for layer in layers[last_conv:]
            if layer.output_shape[-2:] == size and layer.calls == 1 and not layer.inplace
        ]
        chosen = candidates[-1].name if candidates else layers[last_conv].name
    _CHOSEN.setdefault(model, {})[key] = chosen
    return chosen


def _check_named(model: nn.Module, layers: list[FeatureLayer], name: str) -> str:
    names = [layer.name for layer in layers]
    try:
        model.get_submodule(name)
    except AttributeError:
        raise ExplanationError(
            f"{type(model).__name__} has no module named {name!r}; layers with a spatial output (last 15): "
            f"{', '.join(names[-15:])}"
        ) from None
    if name not in names:
        raise ExplanationError(
            f"layer {name!r} does not output a (N, C, h, w) feature map, so Grad-CAM cannot use it; "
            f"layers that do (last 15): {', '.join(names[-15:])}"
        )
    return name


def _layer(target: ScoredModel, images: torch.Tensor, settings: ExplainSettings) -> tuple[nn.Module, Geometry]:
    shape = tuple(images.shape[1:])
    name = find_target_layer(target.model, shape, settings.layer)
    return target.model.get_submodule(name), cell_geometry(target.model, name, shape)


# Where the feature cells' receptive fields are centred: per axis (centre of cell 0, step), or None = stretch.
Geometry = tuple[tuple[float, float], tuple[float, float]] | None
_GEOMETRY: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def cell_geometry(model: nn.Module, layer_name: str, input_shape: tuple[int, int, int]) -> Geometry:
    """Receptive-field centres of the layer's cells as ((row0, row_step), (col0, col_step)), or None when the
    receptive fields touch the image border (padded networks), where a plain stretch is the right mapping."""
    key = (layer_name, tuple(input_shape))
    cached = _GEOMETRY.get(model, {})
    if key in cached:
        return cached[key]
    layer = model.get_submodule(layer_name)
    stored: dict[str, torch.Tensor] = {}
    handle = layer.register_forward_hook(lambda _m, _i, out: stored.__setitem__("a", out))
    # A fixed random input (own generator: no global RNG use) so that ReLUs leave every path of the field open.
    x = torch.rand((1, *input_shape), generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    was_training = model.training
    try:
        model.eval()
        with torch.enable_grad():
            model(x)
    finally:
        handle.remove()
        model.train(was_training)
    act = stored["a"]
    h, w = act.shape[-2:]
    height, width = input_shape[-2:]
    cells = ((h // 4, w // 4), (h - 1 - h // 4, w - 1 - w // 4))
    spans = []
    for r, c in cells:
        grad = torch.autograd.grad(act[0, :, r, c].sum(), x, retain_graph=True)[0][0].abs().sum(0)
        rows, cols = torch.nonzero(grad.sum(1) > 0).flatten(), torch.nonzero(grad.sum(0) > 0).flatten()
        if len(rows) == 0 or len(cols) == 0:
            spans = []
            break
        spans.append((rows.min().item(), rows.max().item(), cols.min().item(), cols.max().item()))
    geometry: Geometry = None
    inside = spans and all(r0 > 0 and c0 > 0 and r1 < height - 1 and c1 < width - 1 for r0, r1, c0, c1 in spans)
    if inside and cells[1][0] > cells[0][0] and cells[1][1] > cells[0][1]:
        (a0, a1, b0, b1), (a2, a3, b2, b3) = spans
        row_c0, row_c1 = (a0 + a1) / 2, (a2 + a3) / 2
        col_c0, col_c1 = (b0 + b1) / 2, (b2 + b3) / 2
        row_step = (row_c1 - row_c0) / (cells[1][0] - cells[0][0])
        col_step = (col_c1 - col_c0) / (cells[1][1] - cells[0][1])
        geometry = ((row_c0 - row_step * cells[0][0], row_step), (col_c0 - col_step * cells[0][1], col_step))
    _GEOMETRY.setdefault(model, {})[key] = geometry
    return geometry


def upsample(cam: torch.Tensor, size: tuple[int, int], geometry: Geometry) -> torch.Tensor:
    """(N, 1, h, w) → (N, 1, H, W): bilinear at the cells' true centres (edge values beyond), or a plain stretch."""
    if geometry is None:
        return F.interpolate(cam, size=size, mode="bilinear", align_corners=False)
    h, w = cam.shape[-2:]
    (row0, row_step), (col0, col_step) = geometry

    def axis(n_out: int, start: float, step: float, n_cells: int) -> torch.Tensor:
        cell = (torch.arange(n_out, dtype=torch.float32) - start) / step  # fractional cell index of each pixel
        return -1 + 2 * cell / max(n_cells - 1, 1) if n_cells > 1 else torch.zeros(n_out)

    gy, gx = axis(size[0], row0, row_step, h), axis(size[1], col0, col_step, w)
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1)  # (H, W, 2) as (x, y)
    grid = grid.unsqueeze(0).expand(len(cam), -1, -1, -1)
    return F.grid_sample(cam, grid, mode="bilinear", padding_mode="border", align_corners=True)


@EXPLAINERS.register(
    "gradcam",
    summary="Grad-CAM: feature map weighted by mean gradients of the target logit (Captum LayerGradCam)",
    needs_conv=True,
    needs_grad=True,
    output="logit",
    stochastic=False,
)
def gradcam(
    target: ScoredModel, images: torch.Tensor, targets: torch.Tensor, settings: ExplainSettings, seeds: list[int]
) -> np.ndarray:
    """Grad-CAM."""
    require_captum()
    from captum.attr import LayerGradCam

    layer, geometry = _layer(target, images, settings)
    with torch.enable_grad():
        cam = LayerGradCam(target.model, layer).attribute(
            images, target=targets.tolist(), relu_attributions=True, attr_dim_summation=True
        )
    cam = upsample(cam.detach().float(), tuple(images.shape[-2:]), geometry)
    return cam[:, 0].numpy().astype(np.float32)


@EXPLAINERS.register(
    "gradcam_pp",
    summary="Grad-CAM++: pixel-wise weighted positive gradients, better for several lesions per image",
    needs_conv=True,
    needs_grad=True,
    output="logit",
    stochastic=False,
)
def gradcam_pp(
    target: ScoredModel, images: torch.Tensor, targets: torch.Tensor, settings: ExplainSettings, seeds: list[int]
) -> np.ndarray:
    """Grad-CAM++."""
    layer, geometry = _layer(target, images, settings)
    stored: dict[str, torch.Tensor] = {}

    def keep(_module, _inputs, output):
        stored["a"] = output
        # A clone goes downstream so that a following in-place activation cannot overwrite the kept map.
        return output.clone()

    handle = layer.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            logits = target.model(images.detach())
            score = logits.float()[torch.arange(len(images)), targets].sum()
            grads = torch.autograd.grad(score, stored["a"])[0].float()
    finally:
        handle.remove()
    acts = stored["a"].detach().float()
    # Closed form of Chattopadhay et al. (eq. 19) with the exponential score, so only first-order gradients are
    # needed: alpha = g² / (2 g² + Σ_ab A · g³).
    g2, g3 = grads**2, grads**3
    denom = 2 * g2 + acts.sum(dim=(2, 3), keepdim=True) * g3
    alpha = torch.where(denom != 0, g2 / torch.where(denom != 0, denom, torch.ones_like(denom)), 0.0)
    weights = (alpha * F.relu(grads)).sum(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * acts).sum(dim=1, keepdim=True))
    cam = upsample(cam, tuple(images.shape[-2:]), geometry)
    return cam[:, 0].numpy().astype(np.float32)
