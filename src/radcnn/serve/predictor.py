"""`Predictor`: image files → probabilities and decisions, preprocessed exactly as the model's ModelSpec says.

With a key, the model file and the image files may be encrypted at rest (`.rcenc`, `radcnn encrypt`): both are
decrypted in memory only. A plain image name is also found as `<name>.rcenc`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from radcnn.data.encrypted import ENCRYPTED_SUFFIX, is_encrypted_file, read_plaintext, stored_file
from radcnn.errors import ImageReadError, ModelError
from radcnn.models.checkpoint import load_model
from radcnn.models.spec import ModelSpec
from radcnn.training.callbacks import BEST_MODEL
from radcnn.training.predict_arrays import logits_to_probabilities

if TYPE_CHECKING:
    from radcnn.privacy.keys import Secret

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
        if path.is_dir():
            path = path / BEST_MODEL
            if stored_file(path) is None:
                raise ModelError(f"{path.parent}: no {BEST_MODEL} in this run directory (did training finish?)")
        model, spec = load_model(path, key=key)
        return cls(model, spec, key=key)

    def prepare(self, path: str | Path) -> tuple[np.ndarray, tuple[str, ...]]:
        from radcnn.data.cache import preprocess
        from radcnn.data.reader import read_image, read_image_bytes

        stored = stored_file(path)
        size = (int(self.spec.input_size[0]), int(self.spec.input_size[1]))
        # target_size: decoded exactly as the training cache decoded it (reduced-resolution JPEG 2000 / JPEG).
        if stored is None or (self.key is None and not is_encrypted_file(stored)):
            image, meta = read_image(path, window=self.spec.window, target_size=size)  # or the reader's own error
        else:
            # Decrypted in memory only; an encrypted file without a key raises KeyNeededError naming it.
            plain_name = Path(path).with_name(Path(path).name.removesuffix(ENCRYPTED_SUFFIX))
            data = read_plaintext(stored, self.key)
            image, meta = read_image_bytes(plain_name, data, window=self.spec.window, target_size=size)
        return preprocess(image, size), tuple(meta.warnings)

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
