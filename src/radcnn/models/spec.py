"""`ModelSpec`: the metadata that travels inside every saved model and drives preprocessing at inference."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from radcnn.errors import ModelError

# The one intensity convention (see radcnn.data.readers.dispatch): float32 in [0, 1], bright = dense (MONOCHROME2 display).
UNIT_RANGE_MONOCHROME2 = "unit_range_monochrome2"


TTA_MODES = ("none", "flip", "flip_shift")


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to turn an image file into this model's input and its output into decisions."""

    architecture: str
    input_size: tuple[int, int]
    label_names: tuple[str, ...]
    in_channels: int = 1
    task: str = "binary"  # "binary" (one or more independent sigmoid outputs) | "multiclass" (softmax)
    intensity: str = UNIT_RANGE_MONOCHROME2
    window: str = "stored"
    thresholds: tuple[float, ...] = ()  # one per label; chosen on the validation split
    threshold_method: str = "default 0.5"
    tta: str = "none"  # test-time augmentation applied by every prediction path: "none" | "flip" | "flip_shift"
    model_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in ("binary", "multiclass"):
            raise ModelError(f"ModelSpec.task must be 'binary' or 'multiclass', got {self.task!r}")
        if self.tta not in TTA_MODES:
            raise ModelError(f"ModelSpec.tta must be one of {', '.join(TTA_MODES)}, got {self.tta!r}")
        if not self.thresholds:
            object.__setattr__(self, "thresholds", tuple(0.5 for _ in self.label_names))
        if self.task == "binary" and len(self.thresholds) != len(self.label_names):
            raise ModelError(f"ModelSpec has {len(self.label_names)} labels but {len(self.thresholds)} thresholds")

    @property
    def num_outputs(self) -> int:
        return len(self.label_names)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelSpec:
        try:
            values = json.loads(text)
            values["input_size"] = tuple(values["input_size"])
            values["label_names"] = tuple(values["label_names"])
            values["thresholds"] = tuple(values.get("thresholds", ()))
            return cls(**values)
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"the stored ModelSpec is not valid: {exc}") from None
