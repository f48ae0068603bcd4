"""`Predictor`: image files → probabilities and decisions, preprocessed exactly as the model's ModelSpec says.

Images go through `radcnn.data.inputs.load_input`, the one input path training's cache uses too. With a key, the
model file and the image files may be encrypted at rest (`.rcenc`, `radcnn encrypt`): both are decrypted in memory
only. A plain image name is also found as `<name>.rcenc`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from radcnn.data.inputs import load_input
from radcnn.errors import ImageReadError
from radcnn.models.checkpoint import load_model
from radcnn.models.inference import logits_to_probabilities
from radcnn.models.spec import ModelSpec
from radcnn.runs import RunDir

if TYPE_CHECKING:
    from radcnn.encryption.keys import Secret

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    path: str
    probabilities: dict[str, float]
    decisions: dict[str, bool]
    error: str | None = None
    warnings: tuple[str, ...] = field(default=())


class Predictor:
    """Holds one model in eval mode and its spec; `predict_files` reads, preprocesses and scores images."""

    def __init__(self, model: nn.Module, spec: ModelSpec, *, key: Secret | bytes | None = None):
        self.model = model.eval()
        self.spec = spec
        self.key = key  # for encrypted image files; None reads plain files only

    @classmethod
    def from_path(cls, path: str | Path, *, key: Secret | bytes | None = None) -> Predictor:
        """A run directory (uses its best model, plain or `.rcenc`) or a `.safetensors[.rcenc]` model file."""
        path = Path(path)
        model, spec = RunDir(path, key=key).load_model() if path.is_dir() else load_model(path, key=key)
        return cls(model, spec, key=key)

    def prepare(self, path: str | Path) -> tuple[np.ndarray, tuple[str, ...]]:
        """(model input (C, H, W), reader warnings) of one file, through the one input path."""
        prepared = load_input(path, self.spec, key=self.key)
        return prepared.array, prepared.warnings

    @torch.inference_mode()
    def predict_batch(self, images: np.ndarray) -> np.ndarray:
        """(N, 1, H, W) float32 in [0, 1] → probabilities (N, C)."""
        logits = self.model(torch.from_numpy(np.asarray(images, dtype=np.float32))).float()
        return logits_to_probabilities(logits, self.spec.task).numpy()

    def _decisions(self, row: np.ndarray) -> dict[str, bool]:
        names = self.spec.label_names
        if self.spec.task == "multiclass":  # exactly one class: the most probable
            return {n: bool(k == int(np.argmax(row))) for k, n in enumerate(names)}
        return {n: bool(v >= t) for n, v, t in zip(names, row, self.spec.thresholds, strict=True)}

    def predict_files(self, paths: list[str | Path], *, on_error: str = "fail") -> list[Prediction]:
        prepared, results = [], {}
        for path in paths:
            try:
                prepared.append((str(path), *self.prepare(path)))
            except ImageReadError as exc:
                if on_error == "fail":
                    raise
                results[str(path)] = Prediction(str(path), {}, {}, error=exc.reason)
        if prepared:
            probs = self.predict_batch(np.stack([image for _, image, _ in prepared]))
            for (path, _, warns), row in zip(prepared, probs, strict=True):
                results[path] = Prediction(
                    path,
                    {n: float(v) for n, v in zip(self.spec.label_names, row, strict=True)},
                    self._decisions(row),
                    warnings=warns,
                )
        return [results[str(p)] for p in paths]
