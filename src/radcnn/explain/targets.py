"""What is explained: a model's logit or probability for one label, chosen by name.

`ScoredModel` wraps a network and its `ModelSpec` so every method sees the same two views of it:

* `logits` — the raw outputs; gradient methods (Grad-CAM, Integrated Gradients, Gradient SHAP) attribute these,
  because a saturated sigmoid/softmax has vanishing gradients exactly where the model is most certain.
* `probabilities` — sigmoid per label (``task="binary"``, one or several independent labels) or softmax over
  labels (``task="multiclass"``); perturbation methods (Occlusion, LIME, Kernel SHAP) and the faithfulness
  curves use these, so their numbers are changes in predicted probability.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from radcnn.errors import UnknownNameError
from radcnn.models.spec import ModelSpec


class _Probabilities(nn.Module):
    """The model followed by its output activation; a module so Captum can call and hook it."""

    def __init__(self, model: nn.Module, multiclass: bool):
        super().__init__()
        self.model, self.multiclass = model, multiclass

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x).float()
        return torch.softmax(logits, dim=1) if self.multiclass else torch.sigmoid(logits)


class ScoredModel:
    """A network in eval mode plus its spec: logits, probabilities and label-name targets."""

    def __init__(self, model: nn.Module, spec: ModelSpec):
        self.model = model.eval()
        self.spec = spec
        self.probability_model = _Probabilities(self.model, spec.task == "multiclass").eval()

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(self.spec.label_names)

    @property
    def input_size(self) -> tuple[int, int]:
        return (int(self.spec.input_size[0]), int(self.spec.input_size[1]))

    @torch.inference_mode()
    def predict(self, images: np.ndarray | torch.Tensor, *, batch_size: int = 64) -> np.ndarray:
        """(N, 1, H, W) → probabilities (N, C) float32."""
        tensor = torch.as_tensor(np.asarray(images, dtype=np.float32))
        with channels_last(self.model):
            out = [self.probability_model(tensor[i : i + batch_size]) for i in range(0, len(tensor), batch_size)]
        return torch.cat(out).numpy().astype(np.float32) if out else np.zeros((0, len(self.label_names)), np.float32)

    def target_scores(self, images: np.ndarray, targets: Sequence[int], *, batch_size: int = 64) -> np.ndarray:
        """Probability of each image's own target label: (N,) float32."""
        probs = self.predict(images, batch_size=batch_size)
        return probs[np.arange(len(probs)), np.asarray(targets, dtype=int)]


@contextlib.contextmanager
def channels_last(model: nn.Module) -> Iterator[None]:
    """Run a block with the model's 4-D weights in channels-last layout, then put the original tensors back.

    Perturbation methods run thousands of forward passes; on CPUs, oneDNN convolutions and poolings are about
    twice as fast in channels-last layout (the seed CNN at 224×224: 22 vs 41 ms per image, one core). Only the
    memory layout changes, never a value, and the caller's model is restored exactly.
    """
    saved = [(p, p.data) for p in model.parameters() if p.dim() == 4]
    try:
        for param, data in saved:
            # .to (not .contiguous) also restrides 1-channel weights, which are ambiguous between the layouts.
            param.data = data.to(memory_format=torch.channels_last)
        yield
    finally:
        for param, data in saved:
            param.data = data


def resolve_targets(spec: ModelSpec, target: str | int | None, probabilities: np.ndarray) -> np.ndarray:
    """The output index to explain for each image.

    `target` is a label name (or an index). Left out: the only output of a single-label model, otherwise each
    image's most probable label (what a reader would ask "why?" about). An unknown name lists the labels.
    """
    n = len(probabilities)
    names = list(spec.label_names)
    if target is None:
        if len(names) == 1:
            return np.zeros(n, dtype=np.int64)
        return np.asarray(probabilities, dtype=np.float32).argmax(axis=1).astype(np.int64)
    if isinstance(target, int | np.integer) and not isinstance(target, bool):
        if not 0 <= int(target) < len(names):
            raise UnknownNameError("target label index", str(target), [str(i) for i in range(len(names))])
        return np.full(n, int(target), dtype=np.int64)
    if str(target) not in names:
        raise UnknownNameError("target label", str(target), names)
    return np.full(n, names.index(str(target)), dtype=np.int64)
