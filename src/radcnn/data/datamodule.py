"""Tensors for training: array-backed splits, a batch-at-once dataset and the LightningDataModule.

Images come from the decode-once cache (a memory map) or from an in-memory array (MedMNIST). A whole batch is
gathered with one fancy-indexing call instead of 32 `__getitem__` calls, so that reading never limits training.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset


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
    """Map-style dataset whose `__getitems__` returns a ready (x, y) batch (torch's batched-fetch hook)."""

    def __init__(self, split: ArraySplit):
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.__getitems__([index])
        return x[0], y[0]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        order = np.asarray(indices)
        x = np.asarray(self.split.images[order], dtype=np.float32)
        y = np.asarray(self.split.labels[order], dtype=np.float32)
        return torch.from_numpy(x), torch.from_numpy(y)


def _already_collated(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    return batch


def make_loader(split: ArraySplit, *, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    # An explicit generator keeps shuffling reproducible without touching torch's global RNG.
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(
        BatchedArrayDataset(split),
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        collate_fn=_already_collated,
        num_workers=0,
    )


class RadiographDataModule(L.LightningDataModule):
    """Wraps prepared train/val/test splits for Lightning."""

    def __init__(self, splits: dict[str, ArraySplit], *, batch_size: int = 32, seed: int = 0):
        super().__init__()
        self.splits = splits
        self.batch_size = batch_size
        self.seed = seed

    def train_dataloader(self) -> DataLoader:
        return make_loader(self.splits["train"], batch_size=self.batch_size, shuffle=True, seed=self.seed)

    def val_dataloader(self) -> DataLoader:
        return make_loader(self.splits["val"], batch_size=max(self.batch_size, 128), shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return make_loader(self.splits["test"], batch_size=max(self.batch_size, 128), shuffle=False)
