"""Saving and loading a trained model as one safetensors file: weights plus the ModelSpec as metadata.

safetensors holds only tensors and strings, so loading a model never executes pickled code.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from radcnn.errors import ModelError
from radcnn.io import atomic_path
from radcnn.models.registry import create_model
from radcnn.models.spec import ModelSpec

SPEC_KEY = "radcnn.model_spec"


def save_model(model: nn.Module, spec: ModelSpec, path: str | Path) -> Path:
    """Write a real copy of the weights (detached, contiguous clones) and the spec, atomically."""
    state = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={SPEC_KEY: spec.to_json()})
    return Path(path)


def read_spec(path: str | Path) -> ModelSpec:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise ModelError(f"{path}: not a radcnn model file ({exc})") from None
    if SPEC_KEY not in metadata:
        raise ModelError(f"{path}: has no ModelSpec; it was not written by radcnn.save_model")
    return ModelSpec.from_json(metadata[SPEC_KEY])


def load_model(path: str | Path) -> tuple[nn.Module, ModelSpec]:
    """Rebuild the architecture named in the spec and load the weights strictly; returns (model in eval mode, spec)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    spec = read_spec(path)
    model = build_from_spec(spec)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ModelError(f"{path}: cannot read weights ({exc})") from None
    load_state_strict(model, state, source=str(path))
    model.eval()
    return model, spec


def build_from_spec(spec: ModelSpec) -> nn.Module:
    return create_model(
        spec.architecture,
        in_channels=spec.in_channels,
        num_outputs=spec.num_outputs,
        input_size=tuple(spec.input_size),
        **spec.model_kwargs,
    )


def load_state_strict(model: nn.Module, state: dict[str, torch.Tensor], *, source: str) -> None:
    """Load a state dict, naming every missing, unexpected or wrongly shaped tensor on failure."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [
        f"{k} (file {tuple(state[k].shape)} vs model {tuple(own[k].shape)})"
        for k in sorted(set(own) & set(state))
        if own[k].shape != state[k].shape
    ]
    if missing or unexpected or mismatched:
        parts = []
        if mismatched:
            parts.append("shape mismatch: " + "; ".join(mismatched[:10]))
        if missing:
            parts.append("missing: " + ", ".join(missing[:10]))
        if unexpected:
            parts.append("unexpected: " + ", ".join(unexpected[:10]))
        raise ModelError(f"{source}: weights do not fit the architecture — " + " | ".join(parts))
    model.load_state_dict(state, strict=True)
