"""The LightningDataModule over prepared splits (`radcnn.data.loaders` holds the splits and loaders)."""

from __future__ import annotations

import lightning as L
from torch.utils.data import DataLoader

from radcnn.data.augment import build_augmentation
from radcnn.data.loaders import ArraySplit, make_loader


class RadiographDataModule(L.LightningDataModule):
    """Wraps prepared train/val/test splits for Lightning."""

    def __init__(
        self,
        splits: dict[str, ArraySplit],
        *,
        batch_size: int = 32,
        seed: int = 0,
        augment: str = "none",
        balanced: bool = False,
    ):
        super().__init__()
        self.splits = splits
        self.batch_size = batch_size
        self.seed = seed
        self.augment = augment
        self.balanced = balanced

    def train_dataloader(self) -> DataLoader:
        return make_loader(
            self.splits["train"],
            batch_size=self.batch_size,
            shuffle=True,
            seed=self.seed,
            augment=build_augmentation(
                self.augment, seed=self.seed, image_size=int(self.splits["train"].images.shape[-1])
            ),
            balanced=self.balanced,
        )

    def val_dataloader(self) -> DataLoader:
        return make_loader(self.splits["val"], batch_size=max(self.batch_size, 128), shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return make_loader(self.splits["test"], batch_size=max(self.batch_size, 128), shuffle=False)
