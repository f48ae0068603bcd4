"""Saving and loading a trained model as one safetensors file: weights plus the ModelSpec as metadata.

safetensors holds only tensors and strings, so loading a model never executes pickled code.

A model file encrypted at rest (`radcnn encrypt best_model.safetensors best_model.safetensors.rcenc`) is read with
a key: decrypted in memory, the ModelSpec taken from the safetensors header of those bytes and the weights loaded
with `safetensors.torch.load(bytes)`, so no plaintext model ever reaches the disk. A path that does not exist is
also looked up as `<path>.rcenc`.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError
from safetensors.torch import load, load_file, save_file
from torch import nn

from radcnn.encryption.files import is_encrypted_file, key_needed, stored_file
from radcnn.errors import ModelError
from radcnn.io import atomic_path
from radcnn.models.registry import create_model
from radcnn.models.spec import ModelSpec

if TYPE_CHECKING:
    from radcnn.encryption.keys import Secret

SPEC_KEY = "radcnn.model_spec"
_MAX_HEADER_BYTES = 100 << 20  # safetensors' own limit on the JSON header


def save_model(model: nn.Module, spec: ModelSpec, path: str | Path) -> Path:
    """Write a real copy of the weights (detached, contiguous clones) and the spec, atomically."""
    state = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={SPEC_KEY: spec.to_json()})
    return Path(path)


def read_spec(path: str | Path, *, key: Secret | bytes | None = None) -> ModelSpec:
    """The ModelSpec saved in a model file (decrypted in memory with `key` when the file is encrypted)."""
    from safetensors import safe_open

    path = _model_file(path)
    if is_encrypted_file(path):
        return _spec_from_metadata(path, header_metadata(_decrypted(path, key), path))
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise ModelError(f"{path}: not a radcnn model file ({exc})") from None
    return _spec_from_metadata(path, metadata)


def _spec_from_metadata(path: Path, metadata: dict[str, str]) -> ModelSpec:
    if SPEC_KEY not in metadata:
        raise ModelError(f"{path}: has no ModelSpec; it was not written by radcnn.save_model")
    return ModelSpec.from_json(metadata[SPEC_KEY])


def header_metadata(data: bytes, where: str | Path) -> dict[str, str]:
    """The ``__metadata__`` of safetensors bytes: an 8-byte little-endian header length, then that much JSON."""
    if len(data) < 8:
        raise ModelError(f"{where}: not a radcnn model file (only {len(data)} bytes)")
    (size,) = struct.unpack("<Q", data[:8])
    if size > min(len(data) - 8, _MAX_HEADER_BYTES):
        raise ModelError(f"{where}: not a radcnn model file (header length {size} exceeds the file)")
    try:
        header = json.loads(data[8 : 8 + size])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{where}: not a radcnn model file (header is not JSON: {exc})") from None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    return metadata if isinstance(metadata, dict) else {}


def _model_file(path: str | Path) -> Path:
    """`path`, or `path.rcenc` when only the encrypted file exists."""
    found = stored_file(path)
    if found is None:
        raise ModelError(f"{path}: model file not found")
    return found


def _decrypted(path: Path, key: Secret | bytes | None) -> bytes:
    if key is None:
        raise key_needed(path)
    from radcnn.encryption.cipher import decrypt_to_bytes

    return decrypt_to_bytes(path, key)


def load_model(path: str | Path, *, key: Secret | bytes | None = None) -> tuple[nn.Module, ModelSpec]:
    """Rebuild the architecture named in the spec and load the weights strictly; returns (model in eval mode, spec).

    An encrypted model file (see the module docstring) needs `key`; without it `KeyNeededError` names the file."""
    path = _model_file(path)
    if is_encrypted_file(path):
        data = _decrypted(path, key)
        spec = _spec_from_metadata(path, header_metadata(data, path))
        model = build_from_spec(spec)
        try:
            state = load(data)
        except SafetensorError as exc:
            raise ModelError(f"{path}: cannot read weights ({exc})") from None
    else:
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
    kwargs = dict(spec.model_kwargs)
    norm = kwargs.pop("norm", None)  # "group": BatchNorm replaced by GroupNorm for DP-SGD (radcnn.models.norms)
    model = create_model(
        spec.architecture,
        in_channels=spec.in_channels,
        num_outputs=spec.num_outputs,
        input_size=tuple(spec.input_size),
        **kwargs,
    )
    if norm is not None:
        from radcnn.models.norms import GROUP_NORM, batchnorm_to_groupnorm

        if norm != GROUP_NORM:
            raise ModelError(f"ModelSpec.model_kwargs norm must be {GROUP_NORM!r}; got {norm!r}")
        batchnorm_to_groupnorm(model)
    return model


def load_state_strict(model: nn.Module, state: dict[str, torch.Tensor], *, source: str) -> None:
    """Load a state dict, naming every missing, unexpected or wrongly shaped tensor on failure.

    A model whose state has a data-dependent size (the classic baselines' serialised estimators) sizes itself from
    the file first through its `prepare_state(state)` method."""
    prepare = getattr(model, "prepare_state", None)
    if callable(prepare):
        prepare(state)
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
