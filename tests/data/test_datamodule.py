import numpy as np
import pandas as pd
import torch

from radcnn.data.datamodule import RadiographDataModule
from radcnn.data.loaders import ArraySplit, balanced_sample_weights, make_loader


def _split(n=64, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.random((n, 1, 32, 32), dtype=np.float32)
    labels = (rng.random((n, 1)) < 0.25).astype(np.float32)
    return ArraySplit(images, labels, pd.DataFrame({"path": [f"{i}" for i in range(n)]}))


def test_batches_come_back_in_order_and_unchanged_without_augmentation():
    split = _split()
    x, y = next(iter(make_loader(split, batch_size=16, shuffle=False)))
    assert torch.equal(x, torch.from_numpy(split.images[:16])) and torch.equal(y, torch.from_numpy(split.labels[:16]))


def test_augmentation_touches_the_training_split_only():
    splits = {"train": _split(seed=1), "val": _split(seed=2), "test": _split(seed=3)}
    module = RadiographDataModule(splits, batch_size=64, augment="strong", seed=0)
    for name, loader in (("val", module.val_dataloader()), ("test", module.test_dataloader())):
        x, _ = next(iter(loader))
        assert torch.equal(x, torch.from_numpy(splits[name].images)), name
    train_x = torch.cat([x for x, _ in module.train_dataloader()])
    assert train_x.shape == (64, 1, 32, 32)
    original = torch.from_numpy(splits["train"].images)
    # Shuffled and augmented: no training image comes back exactly as stored, values stay in [0, 1].
    matches = sum(bool((train_x == img).all(dim=(1, 2, 3)).any()) for img in original)
    assert matches < 8
    assert float(train_x.min()) >= 0.0 and float(train_x.max()) <= 1.0


def test_augmented_training_batches_are_reproducible_for_a_seed():
    splits = {"train": _split(seed=1), "val": _split(seed=2), "test": _split(seed=3)}
    first = next(iter(RadiographDataModule(splits, augment="standard", seed=4).train_dataloader()))[0]
    again = next(iter(RadiographDataModule(splits, augment="standard", seed=4).train_dataloader()))[0]
    other = next(iter(RadiographDataModule(splits, augment="standard", seed=5).train_dataloader()))[0]
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_balanced_sampler_weights_give_each_class_half_the_mass():
    labels = np.array([[1.0], [0.0], [0.0], [0.0], [np.nan]])
    w = balanced_sample_weights(labels)
    assert w[0] == 0.5 and np.isclose(w[1:].sum(), 0.5)
    split = _split(n=400)
    loader = make_loader(split, batch_size=400, shuffle=False, balanced=True, seed=0)
    _, y = next(iter(loader))
    assert 0.4 < float(y.mean()) < 0.6  # 25% positives in the data, about half in balanced batches
