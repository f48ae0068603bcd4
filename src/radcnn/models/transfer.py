"""Transfer learning: initialise a model from a local weights file, then freeze or slow down its backbone.

`initialise_from` loads every tensor whose shape fits, adapts the few that can be adapted exactly, skips the
classifier head when its output count differs, and returns a `TransferReport` saying which tensor went where.
Weights that do not fit the architecture are an error that names the mismatching tensors.

Adaptations (each one listed in the report):

* **3 → 1 input channels** (torchvision ImageNet stems): the RGB kernels are *summed*, not averaged. A grey
  radiograph is the RGB image whose three channels are equal, x·(1, 1, 1); the first convolution's response to it
  is Σ_c W_c * x = (Σ_c W_c) * x, so the summed kernel reproduces that response exactly. The mean would scale
  every first-layer activation by 1/3 and shift the statistics the following BatchNorm was trained on.
* **torchvision ResNet downsample bias**: MONAI's ResNet gives the 1×1 downsample convolution a bias that
  torchvision's lacks; setting it to zero makes the block compute what torchvision's does.
* **TorchXRayVision intensity range** (``adapt_intensity=True``): TorchXRayVision feeds images scaled to
  [-1024, 1024] (x_xrv = 2048·x − 1024), radcnn feeds [0, 1]. The stem convolution has no bias and is followed by
  BatchNorm, so the affine change is folded into that BatchNorm's running statistics: mean' = (mean + 1024·ΣW_c)/2048,
  var' = (var + eps)/2048² − eps. In eval mode the stem then gives the same output as TorchXRayVision's model on
  its own input (exactly, away from the 3-pixel zero-padded border); in train mode BatchNorm's batch statistics
  absorb the affine change anyway, and the kernels keep their scale so fine-tuning behaves normally.
  ImageNet normalisation is not folded: ImageNet heads are always replaced, so the network is fine-tuned and
  BatchNorm re-estimates its statistics on radiographs.

Freezing sets ``requires_grad=False`` on the backbone's parameters only. BatchNorm running statistics of a frozen
backbone still follow the new data in train mode, which adapts the normalisation to the new site (as AdaBN does);
call ``.eval()`` on backbone modules if they must stay fixed too.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from radcnn.errors import ConfigError, ModelError, UnknownNameError
from radcnn.models.spec import ModelSpec
from radcnn.models.weight_formats import SOURCE_ARCHITECTURES, SOURCES, detect_source, read_weights, to_model_name

log = logging.getLogger(__name__)

# architecture → (head module, final layer whose out_features is the output count). Unlisted architectures use
# their last nn.Linear as both, so a newly registered model still splits.
HEADS: dict[str, tuple[str, str]] = {
    "seed_cnn": ("classifier", "classifier.3"),
    "resnet18": ("fc", "fc"),
    "resnet50": ("fc", "fc"),
    "densenet121": ("class_layers", "class_layers.out"),
    "efficientnet_b0": ("_fc", "_fc"),
}
# architecture → (stem convolution, the BatchNorm right after it) for the channel and intensity adaptations.
STEMS: dict[str, tuple[str, str]] = {
    "resnet18": ("conv1", "bn1"),
    "resnet50": ("conv1", "bn1"),
    "densenet121": ("features.conv0", "features.norm0"),
}
XRV_SCALE, XRV_OFFSET = 2048.0, -1024.0  # TorchXRayVision input = XRV_SCALE · radcnn input + XRV_OFFSET
_DOWNSAMPLE_BIAS = re.compile(r"^layer\d+\.\d+\.downsample\.0\.bias$")
_LIST_LIMIT = 12  # names shown in messages before "… and N more"


@dataclass(frozen=True)
class TransferReport:
    """What `initialise_from` did with every tensor of the file and of the model."""

    path: str
    source: str
    architecture: str
    loaded: tuple[str, ...] = ()  # model tensors copied unchanged from the file
    adapted: tuple[tuple[str, str], ...] = ()  # (model tensor, how it was derived from the file)
    skipped: tuple[tuple[str, str], ...] = ()  # (file tensor, why it was not used)
    missing: tuple[str, ...] = ()  # model tensors left at their initialisation
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def complete(self) -> bool:
        """Every model tensor came from the file unchanged and every file tensor was used."""
        return not (self.adapted or self.skipped or self.missing)

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "source": self.source,
            "architecture": self.architecture,
            "counts": {k: len(getattr(self, k)) for k in ("loaded", "adapted", "skipped", "missing")},
            "loaded": list(self.loaded),
            "adapted": [{"tensor": n, "how": how} for n, how in self.adapted],
            "skipped": [{"tensor": n, "reason": why} for n, why in self.skipped],
            "missing": list(self.missing),
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        parts = [f"{self.path} ({self.source}): {len(self.loaded)} tensors loaded"]
        if self.adapted:
            by_how: dict[str, list[str]] = {}
            for name, how in self.adapted:
                by_how.setdefault(how, []).append(name)
            grouped = "; ".join(f"{_listing(names)}: {how}" for how, names in by_how.items())
            parts.append(f"{len(self.adapted)} adapted ({grouped})")
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped ({_listing(f'{n}: {r}' for n, r in self.skipped)})")
        if self.missing:
            parts.append(f"{len(self.missing)} left at initialisation ({_listing(self.missing)})")
        return "; ".join(parts)


def initialise_from(
    model: nn.Module,
    architecture: str,
    weights_path: str | Path,
    *,
    source: str = "auto",
    adapt_intensity: bool = True,
    allow_partial: bool = False,
) -> TransferReport:
    """Load the tensors of ``weights_path`` that fit ``model`` (a registered ``architecture``) and report on all.

    ``source``: "auto" (detected from the file), "radcnn", "torchvision" or "torchxrayvision".
    A differing classifier head is skipped and left at its initialisation. Any other model tensor that the file
    cannot fill is an error naming the tensors, unless ``allow_partial`` (then it is reported and left as is);
    a file of which nothing fits is always an error.
    """
    if source != "auto" and source not in SOURCES:
        raise UnknownNameError("weights source", source, ["auto", *SOURCES])
    head, final_layer = head_modules(model, architecture)
    weights = read_weights(weights_path)
    own = model.state_dict()
    if source == "auto":
        source = detect_source(weights, set(own))
    _check_source_fits(weights, source, architecture)

    loaded: dict[str, torch.Tensor] = {}
    adapted: dict[str, str] = {}
    skipped: list[tuple[str, str]] = []
    mismatched: dict[str, str] = {}  # backbone tensors the file has in another shape: the architecture does not fit
    stem = STEMS.get(architecture, ("", ""))[0]
    for file_name, tensor in weights.tensors.items():
        name = to_model_name(file_name, source, architecture)
        if name not in own:
            skipped.append((file_name, "not in the model"))
        elif name in loaded:
            skipped.append((file_name, f"a second tensor for {name}"))
        elif tensor.shape == own[name].shape:
            loaded[name] = tensor
            if tensor.dtype != own[name].dtype and tensor.is_floating_point():
                adapted[name] = f"cast {tensor.dtype} → {own[name].dtype}".replace("torch.", "")
        elif name == f"{stem}.weight" and _is_rgb_to_grey(tensor, own[name]):
            loaded[name] = tensor.sum(dim=1, keepdim=True)
            adapted[name] = "3 → 1 input channels: RGB kernels summed (grey x = RGB (x, x, x))"
        elif _in_module(name, head):
            skipped.append((file_name, _head_reason(tensor, own[name], name, final_layer)))
        else:
            reason = f"shape {tuple(tensor.shape)} in file vs {tuple(own[name].shape)} in model"
            skipped.append((file_name, reason))
            mismatched[name] = f"{name} ({reason})"

    if source == "torchvision":
        for name in own:  # MONAI's ResNet downsample conv has a bias, torchvision's none: zero reproduces it
            if _DOWNSAMPLE_BIAS.match(name) and name not in loaded and f"{name[: -len('bias')]}weight" in loaded:
                loaded[name] = torch.zeros_like(own[name])
                adapted[name] = "set to zero: torchvision's downsample convolution has no bias"
    if source == "torchxrayvision" and adapt_intensity:
        adapted.update(_fold_xrv_intensity(model, architecture, loaded, own))

    missing = [name for name in own if name not in loaded]
    if not loaded:
        raise ModelError(
            f"{weights.path}: no tensor of this file fits {architecture} — "
            + _listing(list(mismatched.values()) or [f"{n} ({r})" for n, r in skipped])
        )
    gaps = [
        n for n in missing if n not in mismatched and not _in_module(n, head) and not n.endswith("num_batches_tracked")
    ]
    if (mismatched or gaps) and not allow_partial:
        parts = [f"shape mismatch: {_listing(mismatched.values())}"] if mismatched else []
        parts += [f"not in the file: {_listing(gaps)}"] if gaps else []
        raise ModelError(
            f"{weights.path}: weights do not fit {architecture} — "
            + " | ".join(parts)
            + " (allow_partial=True loads only the tensors that fit)"
        )

    state = dict(own)
    state.update({name: tensor.to(dtype=own[name].dtype) for name, tensor in loaded.items()})
    model.load_state_dict(state, strict=True)
    report = TransferReport(
        path=str(weights.path),
        source=source,
        architecture=architecture,
        loaded=tuple(n for n in own if n in loaded and n not in adapted),
        adapted=tuple((n, adapted[n]) for n in own if n in adapted),
        skipped=tuple(skipped),
        missing=tuple(missing),
        notes=tuple(n for n in (weights.note,) if n),
    )
    log.info("initialised %s from %s", architecture, report.summary())
    if gaps or mismatched:
        log.warning(
            "partial initialisation of %s: %d backbone tensors left at initialisation",
            architecture,
            len(gaps) + len(mismatched),
        )
    return report


def _check_source_fits(weights, source: str, architecture: str) -> None:
    if source in SOURCE_ARCHITECTURES and architecture not in SOURCE_ARCHITECTURES[source]:
        raise ModelError(
            f"{weights.path}: {source} weights can initialise {', '.join(SOURCE_ARCHITECTURES[source])}, "
            f"not {architecture}"
        )
    if source == "radcnn" and weights.spec_json is not None:
        spec = ModelSpec.from_json(weights.spec_json)
        if spec.architecture != architecture:
            raise ModelError(
                f"{weights.path}: holds a {spec.architecture} model; it cannot initialise a {architecture} "
                f"(build the model as {spec.architecture}, or choose weights of a {architecture})"
            )


def _is_rgb_to_grey(file_tensor: torch.Tensor, model_tensor: torch.Tensor) -> bool:
    return (
        file_tensor.ndim == model_tensor.ndim == 4
        and file_tensor.shape[1] == 3
        and model_tensor.shape[1] == 1
        and file_tensor.shape[0] == model_tensor.shape[0]
        and file_tensor.shape[2:] == model_tensor.shape[2:]
    )


def _head_reason(file_tensor: torch.Tensor, model_tensor: torch.Tensor, name: str, final_layer: str) -> str:
    if _in_module(name, final_layer) and file_tensor.shape[0] != model_tensor.shape[0]:
        return f"head: {file_tensor.shape[0]} outputs vs {model_tensor.shape[0]}"
    return f"head: shape {tuple(file_tensor.shape)} in file vs {tuple(model_tensor.shape)} in model"


def _fold_xrv_intensity(model: nn.Module, architecture: str, loaded: dict, own: dict) -> dict[str, str]:
    """Rewrite the stem BatchNorm's running statistics so [0, 1] input acts like TorchXRayVision's [-1024, 1024]."""
    conv, norm = STEMS[architecture]
    needed = [f"{conv}.weight", f"{norm}.running_mean", f"{norm}.running_var"]
    batchnorm = dict(model.named_modules()).get(norm)
    if not all(n in loaded for n in needed) or f"{conv}.bias" in own or not isinstance(batchnorm, nn.BatchNorm2d):
        return {}  # nothing to fold into (or a stem this fold does not model)
    eps = float(batchnorm.eps)
    weight = loaded[needed[0]].double()
    mean, var = loaded[needed[1]].double(), loaded[needed[2]].double()
    # Conv response to x_xrv = s·x + o is s·y + o·ΣW_c, so in radcnn units: mean' = (mean − o·ΣW_c) / s.
    loaded[needed[1]] = (mean - XRV_OFFSET * weight.sum(dim=(1, 2, 3))) / XRV_SCALE
    new_var = (var + eps) / XRV_SCALE**2 - eps
    clamped = int((new_var < 0).sum())
    loaded[needed[2]] = new_var.clamp_min(0.0)
    how = "TorchXRayVision intensity [-1024, 1024] → [0, 1] folded into BatchNorm statistics"
    return {
        needed[1]: how,
        needed[2]: how + (f" ({clamped} channels clamped at 0: approximate)" if clamped else ""),
    }


def head_modules(model: nn.Module, architecture: str) -> tuple[str, str]:
    """(head module name, final layer name) of ``model``; checks that the model has them."""
    modules = dict(model.named_modules())
    if architecture in HEADS:
        head, final = HEADS[architecture]
        if head not in modules or final not in modules:
            raise ModelError(f"the model has no module {head!r}; it does not look like a {architecture}")
        return head, final
    linears = [name for name, module in modules.items() if isinstance(module, nn.Linear)]
    if not linears:
        raise ModelError(f"cannot find the head of {architecture}: the model has no nn.Linear layer")
    return linears[-1], linears[-1]


def _in_module(name: str, module: str) -> bool:
    return name == module or name.startswith(module + ".")


def split_backbone_head(model: nn.Module, architecture: str) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(backbone parameters, head parameters): the head is the final classifier layer(s) of the architecture."""
    head, _ = head_modules(model, architecture)
    backbone, head_params = [], []
    for name, param in model.named_parameters():
        (head_params if _in_module(name, head) else backbone).append(param)
    return backbone, head_params


def freeze_backbone(model: nn.Module, architecture: str, frozen: bool = True) -> int:
    """Stop (or restart) gradients for the backbone; the head is untouched. Returns the parameters affected."""
    backbone, _ = split_backbone_head(model, architecture)
    for param in backbone:
        param.requires_grad_(not frozen)
    log.info("%s backbone of %s: %d parameter tensors", "froze" if frozen else "unfroze", architecture, len(backbone))
    return sum(p.numel() for p in backbone)


def parameter_groups(model: nn.Module, architecture: str, lr: float, backbone_lr_scale: float) -> list[dict]:
    """Optimiser parameter groups for discriminative learning rates: backbone lr = lr × scale, head lr = lr.

    Only trainable parameters are included (a frozen backbone contributes no group); a scale of 0 leaves the
    backbone out as well — `freeze_backbone` also saves its gradient computation.
    """
    if not (math.isfinite(backbone_lr_scale) and backbone_lr_scale >= 0):
        raise ConfigError(f"backbone_lr_scale must be a finite number ≥ 0, got {backbone_lr_scale}")
    if not (math.isfinite(lr) and lr > 0):
        raise ConfigError(f"the learning rate must be a finite number > 0, got {lr}")
    backbone, head = split_backbone_head(model, architecture)
    groups = [
        {"name": "backbone", "params": [p for p in backbone if p.requires_grad], "lr": lr * backbone_lr_scale},
        {"name": "head", "params": [p for p in head if p.requires_grad], "lr": lr},
    ]
    groups = [g for g in groups if g["params"] and g["lr"] > 0]
    if not groups:
        raise ConfigError(f"{architecture}: no trainable parameters left (frozen backbone and head)")
    return groups


def _listing(items) -> str:
    items = list(items)
    shown = ", ".join(items[:_LIST_LIMIT])
    return shown + (f" … and {len(items) - _LIST_LIMIT} more" if len(items) > _LIST_LIMIT else "")
