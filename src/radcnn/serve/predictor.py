"""`Predictor`: image files or bytes → probabilities, decisions, thresholds, warnings and optional heat maps.

One class serves `radcnn predict`, the HTTP API and the DICOM node, so all three preprocess exactly as the
model's ModelSpec says and answer with the same record (`radcnn.serve.prediction.Prediction`). Models load from
safetensors only (no pickle). Every output carries the reader's notes and the out-of-distribution checks of
`radcnn.serve.ood` (CT/MR, colour, body part, aspect ratio).

Backends: ``"torch"`` (the PyTorch model, fp32) or ``"onnx"`` (the same model exported in memory and run by ONNX
Runtime; the export is checked against PyTorch when the Predictor is built). Heat maps always use the PyTorch
model (they need gradients), on a private copy so that they never run hooks on the model that serves batches.

With a key, the model file and the image files may be encrypted at rest (`.rcenc`, `radcnn encrypt`): both are
decrypted in memory only. A plain image name is also found as `<name>.rcenc`.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from radcnn.data.inputs import load_input
from radcnn.data.readers.meta import ImageMeta
from radcnn.data.transforms import preprocess
from radcnn.encryption.format import SUFFIX
from radcnn.errors import ConfigError, ImageReadError
from radcnn.models.checkpoint import load_model
from radcnn.models.inference import logits_to_probabilities, tta_views
from radcnn.models.spec import ModelSpec
from radcnn.runs import RunDir
from radcnn.serve.heatmap import check_method, compute_heatmaps
from radcnn.serve.ood import input_warnings
from radcnn.serve.prediction import Heatmap, ModelInfo, Prediction

if TYPE_CHECKING:
    from radcnn.encryption.keys import Secret

log = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx")
DISPLAY_MAX_SIDE = 1024  # decoded images kept for display (viewer, secondary capture) are shrunk to this


@dataclass(frozen=True)
class Decoded:
    """One input made ready for the model: `input` (C, H, W) float32 in [0, 1], the reader's meta, the warnings."""

    name: str
    input: np.ndarray
    meta: ImageMeta
    warnings: tuple[str, ...]
    image: np.ndarray | None = None  # (H, W) in [0, 1] at display size, when asked for


def weights_digest(model: nn.Module) -> str:
    """12 hex digits of SHA-256 over the state dict (names, shapes, bytes): the model's version."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


def _radcnn_version() -> str:
    try:
        return metadata.version("radcnn")
    except metadata.PackageNotFoundError:
        return "unknown"


class Predictor:
    """Holds one model in eval mode and its spec; thread-safe for concurrent callers (API, DICOM node)."""

    def __init__(
        self,
        model: nn.Module,
        spec: ModelSpec,
        *,
        key: Secret | bytes | None = None,
        name: str | None = None,
        backend: str = "torch",
    ):
        if backend not in BACKENDS:
            raise ConfigError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
        self.model = model.eval()
        self.spec = spec
        self.key = key  # for encrypted image files; None reads plain files only
        self.backend = backend
        self.info = ModelInfo(
            name=name or spec.architecture,
            version=weights_digest(self.model),
            architecture=spec.architecture,
            labels=tuple(spec.label_names),
            radcnn_version=_radcnn_version(),
        )
        self._explain_model: nn.Module | None = None
        self._explain_lock = threading.Lock()
        self._forward = self._torch_forward
        if backend == "onnx":
            self._forward = self._onnx_forward()

    @classmethod
    def from_path(cls, path: str | Path, *, key: Secret | bytes | None = None, backend: str = "torch") -> Predictor:
        """A run directory (uses its best model, plain or `.rcenc`) or a `.safetensors[.rcenc]` model file."""
        path = Path(path)
        if path.is_dir():
            (model, spec), name = RunDir(path, key=key).load_model(), path.name
        else:
            (model, spec), name = load_model(path, key=key), path.name.removesuffix(SUFFIX).removesuffix(".safetensors")
        return cls(model, spec, key=key, name=name, backend=backend)

    # --- the one way from a file (or its bytes) to the model input ------------------------------------------

    def _decode(self, source: str | Path, data: bytes | None = None, *, keep_image: bool = False) -> Decoded:
        """Read `source` (or decode `data`, the bytes of an upload named `source`) through the one input path
        training used (`radcnn.data.inputs.load_input`), and add the out-of-distribution warnings."""
        size = (int(self.spec.input_size[0]), int(self.spec.input_size[1]))
        prepared = load_input(
            source if data is None else data, self.spec, key=self.key, name=str(source), keep_image=keep_image
        )
        warnings = (*prepared.warnings, *input_warnings(prepared.meta, size))
        display = None
        if keep_image:
            image = prepared.image
            scale = min(1.0, DISPLAY_MAX_SIDE / max(image.shape))
            shape = (max(1, round(image.shape[0] * scale)), max(1, round(image.shape[1] * scale)))
            display = preprocess(image, shape)[0]
        return Decoded(str(source), prepared.array, prepared.meta, warnings, display)

    def prepare(self, path: str | Path) -> tuple[np.ndarray, tuple[str, ...]]:
        """(model input (C, H, W), warnings) for one file."""
        decoded = self._decode(path)
        return decoded.input, decoded.warnings

    def decode_bytes(self, data: bytes, name: str = "upload", *, keep_image: bool = False) -> Decoded:
        """Decode uploaded bytes; the format comes from the content, `name` only labels errors and warnings."""
        return self._decode(name, data, keep_image=keep_image)

    # --- scoring ---------------------------------------------------------------------------------------------

    @torch.inference_mode()
    def _torch_forward(self, images: np.ndarray) -> np.ndarray:
        return self.model(torch.from_numpy(images)).float().numpy()

    def _onnx_forward(self) -> Callable[[np.ndarray], np.ndarray]:
        from radcnn.models.export import check_parity, onnx_bytes
        from radcnn.models.onnx_runtime import OnnxRunner

        runner = OnnxRunner(onnx_bytes(self.model, self.spec))
        diff = check_parity(self.model, self.spec, runner, what=f"ONNX backend for {self.info.name}")
        log.info("ONNX Runtime backend ready (max |logit diff| to PyTorch %.2g)", diff)
        return runner

    def predict_batch(self, images: np.ndarray) -> np.ndarray:
        """(N, C, H, W) float32 in [0, 1] → probabilities (N, labels), through the chosen backend."""
        # The model's test-time augmentation (ModelSpec.tta), the same views as radcnn.models.inference averages.
        views = tta_views(torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)), self.spec.tta)
        probabilities = [
            logits_to_probabilities(torch.from_numpy(np.asarray(self._forward(v.contiguous().numpy()))), self.spec.task)
            for v in views
        ]
        return torch.stack(probabilities).mean(dim=0).numpy()

    def _decisions(self, row: np.ndarray) -> dict[str, bool]:
        names = self.spec.label_names
        if self.spec.task == "multiclass":  # exactly one class: the most probable
            return {n: bool(k == int(np.argmax(row))) for k, n in enumerate(names)}
        return {n: bool(v >= t) for n, v, t in zip(names, row, self.spec.thresholds, strict=True)}

    def thresholds(self) -> dict[str, float]:
        if self.spec.task == "multiclass":  # the decision is the arg max; no threshold applies
            return {}
        return {n: float(t) for n, t in zip(self.spec.label_names, self.spec.thresholds, strict=True)}

    def result(self, decoded: Decoded, row: np.ndarray, heatmap: Heatmap | None = None) -> Prediction:
        """The Prediction record for one decoded input and its probability row."""
        return Prediction(
            decoded.name,
            {n: float(v) for n, v in zip(self.spec.label_names, row, strict=True)},
            self._decisions(row),
            warnings=decoded.warnings,
            thresholds=self.thresholds(),
            model=self.info,
            heatmap=heatmap,
            image=decoded.image,
        )

    def heatmaps(self, inputs: np.ndarray, method: str = "gradcam", label: str | None = None) -> list[Heatmap]:
        """Heat maps (see radcnn.serve.heatmap) for (N, C, H, W) inputs, on the private explanation copy."""
        check_method(method)
        with self._explain_lock:
            if self._explain_model is None:
                self._explain_model = copy.deepcopy(self.model).eval()
            return compute_heatmaps(self._explain_model, self.spec, inputs, method, label)

    def predict_decoded(self, decoded: Sequence[Decoded], *, heatmap: str | None = None) -> list[Prediction]:
        if not decoded:
            return []
        inputs = np.stack([d.input for d in decoded])
        probabilities = self.predict_batch(inputs)
        maps: Sequence[Heatmap | None] = self.heatmaps(inputs, heatmap) if heatmap else [None] * len(decoded)
        return [self.result(d, row, m) for d, row, m in zip(decoded, probabilities, maps, strict=True)]

    def predict_bytes(
        self, data: bytes, name: str = "upload", *, heatmap: str | None = None, keep_image: bool = False
    ) -> Prediction:
        """Predict one uploaded file held in memory (DICOM, PNG, JPEG, ...; the content decides)."""
        return self.predict_decoded([self.decode_bytes(data, name, keep_image=keep_image)], heatmap=heatmap)[0]

    def predict_files(
        self,
        paths: Sequence[str | Path],
        *,
        on_error: str = "fail",
        batch_size: int = 32,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Prediction]:
        """Predict files in batches of `batch_size`; `on_error="skip"` gives unreadable files an error record."""
        if on_error not in ("fail", "skip"):
            raise ConfigError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
        results: list[Prediction] = []
        for start in range(0, len(paths), batch_size):
            chunk, decoded = paths[start : start + batch_size], []
            errors: dict[int, Prediction] = {}
            for offset, path in enumerate(chunk):
                try:
                    decoded.append(self._decode(path))
                except ImageReadError as exc:
                    if on_error == "fail":
                        raise
                    errors[offset] = Prediction(str(path), {}, {}, error=exc.reason, model=self.info)
            scored = iter(self.predict_decoded(decoded))
            results.extend(errors[i] if i in errors else next(scored) for i in range(len(chunk)))
            if progress is not None:
                progress(len(results), len(paths))
        return results
