"""Tensors for training: array-backed splits, a batch-at-once dataset and its DataLoader.

Images come from the decode-once cache (a memory map) or from an in-memory array (MedMNIST). A whole batch is
gathered with one fancy-indexing call instead of 32 `__getitem__` calls, so that reading never limits training.

Lightning is not imported here (it costs ~3 s at start-up): commands that only evaluate, compare or predict load
these splits without it; the LightningDataModule lives in `radcnn.data.datamodule`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler


@dataclass
class ArraySplit:
    """One partition: images (N, 1, H, W) in [0, 1] (any array-like, e.g. a memmap), labels (N, C), metadata."""

    images: np.ndarray
    labels: np.ndarray
    table: pd.DataFrame

    def __post_init__(self) -> None:
        if not (len(self.images) == len(self.labels) == len(self.table)):
            raise ValueError("images, labels and table must have the same number of rows")

    def __len__(self) -> int:
        return len(self.labels)


class BatchedArrayDataset(Dataset):
    """Map-style dataset whose `__getitems__` returns a ready (x, y) batch (torch's batched-fetch hook).

    `augment`, when given, is applied image by image (training split only — the data module never passes it to
    validation or test).
    """

    def __init__(self, split: ArraySplit, augment=None):
        self.split = split
        self.augment = augment

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.__getitems__([index])
        return x[0], y[0]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        order = np.asarray(indices)
        x = np.asarray(self.split.images[order], dtype=np.float32)
        if self.augment is not None:
            x = np.stack([self.augment(image) for image in x])
        y = np.asarray(self.split.labels[order], dtype=np.float32)
        return torch.from_numpy(x), torch.from_numpy(y)


def _already_collated(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    return batch


def balanced_sample_weights(labels: np.ndarray) -> np.ndarray:
    """Per-image weights that give positives and negatives of the first label equal total weight."""
    y = np.nan_to_num(labels[:, 0], nan=0.0) > 0.5
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return np.ones(len(y))
    return np.where(y, 0.5 / n_pos, 0.5 / n_neg)


def make_loader(
    split: ArraySplit,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    augment=None,
    balanced: bool = False,
) -> DataLoader:
    # An explicit generator keeps shuffling reproducible without touching torch's global RNG.
    generator = torch.Generator().manual_seed(seed) if shuffle or balanced else None
    sampler = None
    if balanced:
        weights = torch.as_tensor(balanced_sample_weights(split.labels), dtype=torch.double)
        sampler = WeightedRandomSampler(weights, num_samples=len(split), replacement=True, generator=generator)
    return DataLoader(
        BatchedArrayDataset(split, augment=augment),
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        generator=generator if sampler is None else None,
        collate_fn=_already_collated,
        num_workers=0,
    )
