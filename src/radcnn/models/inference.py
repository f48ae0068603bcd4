"""Batched inference over an image array → probabilities (N, C): sigmoid per label, or softmax over classes.

Test-time augmentation (TTA) lives here so that every prediction path (fit's threshold choice, evaluate, report,
predict, the HTTP API) applies the one the model's ModelSpec names:

* ``"flip"``: the mean of the probabilities of the image and its left-right mirror;
* ``"flip_shift"``: the same two views plus the image shifted by one pixel up, down, left and right (edge rows
  repeated, the way the "shift" training augmentation pads), i.e. six views.

Probabilities (not logits) are averaged, so a view the model is unsure about cannot dominate. An augmentation
the model is invariant to leaves its prediction unchanged (tested).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

SHIFTS = ((0, 1), (0, -1), (1, 0), (-1, 0))  # (rows, columns) of the one-pixel "flip_shift" views


def tta_views(x: torch.Tensor, tta: str = "none") -> list[torch.Tensor]:
    """The views of a (N, C, H, W) batch that `tta` averages over (the batch itself first)."""
    if tta == "none":
        return [x]
    if tta not in ("flip", "flip_shift"):
        from radcnn.errors import ConfigError

        raise ConfigError(f"unknown test-time augmentation {tta!r}; valid: none, flip, flip_shift")
    views = [x, torch.flip(x, dims=(-1,))]
    if tta == "flip_shift":
        views += [shift_replicate(x, dy, dx) for dy, dx in SHIFTS]
    return views


def shift_replicate(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Shift a (N, C, H, W) batch by (dy, dx) pixels, repeating the edge rows/columns that move in."""
    pad = max(abs(dy), abs(dx))
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    h, w = x.shape[-2:]
    return padded[..., pad - dy : pad - dy + h, pad - dx : pad - dx + w]


def forward_probabilities(
    model: nn.Module, x: torch.Tensor, *, task: str = "binary", tta: str = "none"
) -> torch.Tensor:
    """Probabilities of one batch, averaged over the `tta` views (float32)."""
    views = tta_views(x, tta)
    if len(views) == 1:
        return logits_to_probabilities(model(x).float(), task)
    # One forward pass over all views together: fewer, larger matrix products.
    logits = model(torch.cat(views)).float()
    return logits_to_probabilities(logits, task).reshape(len(views), len(x), -1).mean(dim=0)


@torch.inference_mode()
def predict_probabilities(
    model: nn.Module, images, *, batch_size: int = 256, task: str = "binary", tta: str = "none"
) -> np.ndarray:
    """Run `model` in eval mode over (N, 1, H, W) images in [0, 1]; returns float32 probabilities (N, C).

    `task` "binary" (one independent sigmoid per label, also multi-label) or "multiclass" (softmax over classes);
    `tta` the test-time augmentation (see the module docstring; pass the ModelSpec's).
    """
    was_training = model.training
    model.eval()
    outputs = []
    try:
        for start in range(0, len(images), batch_size):
            batch = np.asarray(images[np.arange(start, min(start + batch_size, len(images)))], dtype=np.float32)
            outputs.append(forward_probabilities(model, torch.from_numpy(batch), task=task, tta=tta).numpy())
    finally:
        model.train(was_training)
    if not outputs:
        return np.zeros((0, 1), dtype=np.float32)
    return np.concatenate(outputs).astype(np.float32)


def logits_to_probabilities(logits: torch.Tensor, task: str) -> torch.Tensor:
    return torch.softmax(logits, dim=1) if task == "multiclass" else torch.sigmoid(logits)
