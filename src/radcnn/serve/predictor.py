"""`Predictor`: image files → probabilities and decisions, preprocessed exactly as the model's ModelSpec says."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from radcnn.errors import ImageReadError, ModelError
from radcnn.models.checkpoint import load_model
from radcnn.models.spec import ModelSpec
from radcnn.training.callbacks import BEST_MODEL
from radcnn.training.predict_arrays import logits_to_probabilities

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

    def __init__(self, model: nn.Module, spec: ModelSpec):
        self.model = model.eval()
        self.spec = spec

    @classmethod
    def from_path(cls, path: str | Path) -> Predictor:
        """A run directory (uses its best model) or a `.safetensors` model file."""
        path = Path(path)
        if path.is_dir():
            path = path / BEST_MODEL
            if not path.is_file():
                raise ModelError(f"{path.parent}: no {BEST_MODEL} in this run directory (did training finish?)")
        model, spec = load_model(path)
        return cls(model, spec)

    def prepare(self, path: str | Path) -> tuple[np.ndarray, tuple[str, ...]]:
        from radcnn.data.cache import preprocess
        from radcnn.data.reader import read_image

        image, meta = read_image(path, window=self.spec.window)
        return preprocess(image, tuple(self.spec.input_size)), tuple(meta.warnings)

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
