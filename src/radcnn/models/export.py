"""Export a trained model to ONNX or TorchScript, checked against PyTorch before anything is written.

Both formats carry the `ModelSpec` (input size, labels, thresholds) beside the graph: ONNX in the model's
``metadata_props`` under ``radcnn.model_spec``, TorchScript as the extra file ``radcnn_model_spec.json``. The
parity check runs the exported model on a batch of random [0, 1] images and compares its logits with the
PyTorch model's; a difference above `PARITY_TOLERANCE` (fp32) raises `ModelError` and leaves no file behind.

ONNX uses PyTorch's `torch.export`-based exporter (`dynamo=True`, the default path since PyTorch 2.9) with a
dynamic batch dimension, so one file serves any batch size.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from radcnn.errors import ConfigError, MissingExtraError, ModelError
from radcnn.io import atomic_path
from radcnn.models.checkpoint import SPEC_KEY
from radcnn.models.onnx_runtime import OnnxRunner
from radcnn.models.spec import ModelSpec

log = logging.getLogger(__name__)

FORMATS = ("onnx", "torchscript")
PARITY_TOLERANCE = 1e-4  # max |logit difference| for fp32 exports
TORCHSCRIPT_SPEC_FILE = "radcnn_model_spec.json"


@dataclass(frozen=True)
class ExportResult:
    path: Path
    format: str
    max_abs_diff: float  # over the parity batch, in logits
    parity_batch: int
    size_bytes: int


def parity_batch(spec: ModelSpec, n: int = 4, seed: int = 0) -> np.ndarray:
    """`n` random images in the model's input shape and intensity range (a fixed seed: reproducible checks)."""
    rng = np.random.default_rng(seed)
    return rng.random((n, spec.in_channels, *map(int, spec.input_size)), dtype=np.float32)


@torch.inference_mode()
def _torch_logits(model: nn.Module, images: np.ndarray) -> np.ndarray:
    return model.eval()(torch.from_numpy(images)).float().numpy()


def onnx_bytes(model: nn.Module, spec: ModelSpec) -> bytes:
    """The model as a serialised ONNX graph (dynamic batch), with the spec in its metadata."""
    try:
        import onnx  # noqa: F401  (the exporter needs onnx and onnxscript; name the extra if either is missing)
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError(exc.name or "onnx", "serve") from None
    example = (torch.from_numpy(parity_batch(spec, n=2)),)
    try:
        program = torch.onnx.export(
            model.eval(), example, dynamo=True, dynamic_shapes=({0: torch.export.Dim("batch")},), verbose=False
        )
    except Exception as exc:  # the exporter raises many types; the user needs to know which model failed
        raise ModelError(f"ONNX export of {spec.architecture} failed: {type(exc).__name__}: {exc}") from exc
    proto = program.model_proto
    entry = proto.metadata_props.add()
    entry.key, entry.value = SPEC_KEY, spec.to_json()
    return proto.SerializeToString()


def torchscript_bytes(model: nn.Module, spec: ModelSpec) -> bytes:
    """The model traced to TorchScript (`torch.jit.trace`), with the spec as an extra file."""
    example = torch.from_numpy(parity_batch(spec, n=2))
    with torch.inference_mode(False), torch.no_grad():
        traced = torch.jit.trace(model.eval(), example, check_trace=False)
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer, _extra_files={TORCHSCRIPT_SPEC_FILE: spec.to_json()})
    return buffer.getvalue()


def _torchscript_runner(data: bytes) -> Callable[[np.ndarray], np.ndarray]:
    module = torch.jit.load(io.BytesIO(data), map_location="cpu").eval()

    @torch.no_grad()
    def run(images: np.ndarray) -> np.ndarray:
        return module(torch.from_numpy(images)).float().numpy()

    return run


def check_parity(model: nn.Module, spec: ModelSpec, run: Callable[[np.ndarray], np.ndarray], *, what: str) -> float:
    """Max |logit difference| between `run` and the PyTorch model on `parity_batch`; raises above the tolerance."""
    batch = parity_batch(spec)
    expected, got = _torch_logits(model, batch), np.asarray(run(batch), dtype=np.float32)
    if got.shape != expected.shape:
        raise ModelError(f"{what}: output shape {got.shape} differs from PyTorch's {expected.shape}")
    diff = float(np.max(np.abs(got - expected)))
    if not diff <= PARITY_TOLERANCE:  # also catches NaN
        raise ModelError(
            f"{what}: max |logit difference| to PyTorch is {diff:.3g} on {len(batch)} images, "
            f"above the fp32 tolerance {PARITY_TOLERANCE:g}; nothing was written"
        )
    return diff


def export_model(model: nn.Module, spec: ModelSpec, fmt: str, out: str | Path) -> ExportResult:
    """Export `model` as `fmt` ("onnx" | "torchscript") to `out`, atomically, after the parity check passes."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    out = Path(out)
    if fmt == "onnx":
        data = onnx_bytes(model, spec)
        run: Callable[[np.ndarray], np.ndarray] = OnnxRunner(data)
    else:
        data = torchscript_bytes(model, spec)
        run = _torchscript_runner(data)
    diff = check_parity(model, spec, run, what=f"{fmt} export of {spec.architecture}")
    with atomic_path(out) as tmp:
        tmp.write_bytes(data)
    log.info("exported %s to %s (%d bytes, max |logit diff| %.2g)", fmt, out, len(data), diff)
    return ExportResult(out, fmt, diff, len(parity_batch(spec)), len(data))
