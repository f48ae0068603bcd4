"""Batched inference over an image array → probabilities (N, C): sigmoid per label, or softmax over classes."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


@torch.inference_mode()
def predict_probabilities(model: nn.Module, images, *, batch_size: int = 256, task: str = "binary") -> np.ndarray:
    """Run `model` in eval mode over (N, 1, H, W) images in [0, 1]; returns float32 probabilities (N, C).

    `task` "binary" (one independent sigmoid per label, also multi-label) or "multiclass" (softmax over classes).
    """
    was_training = model.training
    model.eval()
    outputs = []
    try:
        for start in range(0, len(images), batch_size):
            batch = np.asarray(images[np.arange(start, min(start + batch_size, len(images)))], dtype=np.float32)
            outputs.append(logits_to_probabilities(model(torch.from_numpy(batch)).float(), task).numpy())
    finally:
        model.train(was_training)
    if not outputs:
        return np.zeros((0, 1), dtype=np.float32)
    return np.concatenate(outputs).astype(np.float32)


def logits_to_probabilities(logits: torch.Tensor, task: str) -> torch.Tensor:
    return torch.softmax(logits, dim=1) if task == "multiclass" else torch.sigmoid(logits)
