"""What one prediction is: probabilities, decisions, thresholds, the model that made it, warnings, a heat map.

The same record is rendered by `radcnn predict` (table, CSV, JSON), returned by the HTTP API and written into the
DICOM node's structured report, so every output carries the thresholds, the model's name and version and the
warnings (reader notes and out-of-distribution checks) with the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ModelInfo:
    """Which model answered. ``version`` is a digest of the weights: it changes whenever a single weight does."""

    name: str
    version: str
    architecture: str
    labels: tuple[str, ...]
    radcnn_version: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "architecture": self.architecture,
            "labels": list(self.labels),
            "radcnn_version": self.radcnn_version,
        }


@dataclass(frozen=True)
class Heatmap:
    """An explanation map at the model's input resolution, scaled to [0, 1] (1 = the strongest evidence)."""

    method: str
    label: str
    values: np.ndarray  # (H, W) float32

    def __post_init__(self) -> None:
        if self.values.ndim != 2:
            raise ValueError(f"a heat map is 2-D, got shape {self.values.shape}")


@dataclass(frozen=True)
class Prediction:
    path: str
    probabilities: dict[str, float]
    decisions: dict[str, bool]
    error: str | None = None
    warnings: tuple[str, ...] = field(default=())
    thresholds: dict[str, float] = field(default_factory=dict)
    model: ModelInfo | None = None
    heatmap: Heatmap | None = field(default=None, compare=False)
    # The decoded image (H, W) in [0, 1] before resizing, kept only when asked for (viewer, secondary capture).
    image: np.ndarray | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: no arrays (the API encodes the heat map and the image itself)."""
        return {
            "path": self.path,
            "probabilities": dict(self.probabilities),
            "decisions": dict(self.decisions),
            "thresholds": dict(self.thresholds),
            "model": self.model.as_dict() if self.model else None,
            "warnings": list(self.warnings),
            "error": self.error,
        }
