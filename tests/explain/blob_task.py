"""A tiny synthetic detection task for explanation tests: bright Gaussian blobs ("nodules") on noisy backgrounds.

Label 1 = a blob is present; its box (x0, y0, x1, y1) spans ±r around the centre, where the blob stands out of
the noise. A seed CNN learns it in a few seconds, which makes "does the map point at the lesion?" testable.
Loaded by file path from tests/explain/conftest.py and tests/cli/test_explain_cli.py.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn


@dataclass
class BlobSet:
    images: np.ndarray  # (N, 1, S, S) float32 in [0, 1]
    labels: np.ndarray  # (N,) float32
    boxes: list  # per image: (x0, y0, x1, y1) or None


def make_blobs(n: int, *, size: int = 48, seed: int = 0) -> BlobSet:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images = np.empty((n, 1, size, size), np.float32)
    labels = np.zeros(n, np.float32)
    boxes = []
    margin = max(2, size // 6)  # lesions inside the "lung", away from the border
    for i in range(n):
        image = 0.3 + 0.15 * xx / size * rng.uniform(-1, 1) + rng.normal(0, 0.04, (size, size))
        box = None
        if rng.random() < 0.5:
            r = rng.uniform(4, 7) * size / 48
            cy, cx = rng.uniform(r + margin, size - r - margin, 2)
            image = image + 0.5 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (r / 2) ** 2))
            labels[i] = 1
            box = (cx - r, cy - r, cx + r, cy + r)
        boxes.append(box)
        images[i, 0] = np.clip(image, 0, 1)
    return BlobSet(images, labels, boxes)


@contextlib.contextmanager
def one_thread():
    """The test machine has 2 cores shared by several jobs: one torch thread avoids oversubscription stalls."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_seed_cnn(data: BlobSet, *, epochs: int = 4, seed: int = 0) -> nn.Module:
    from radcnn.models.registry import create_model

    size = data.images.shape[-1]
    with torch.random.fork_rng(devices=[]), one_thread():
        torch.manual_seed(seed)
        model = create_model("seed_cnn", input_size=(size, size))
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
        x, y = torch.from_numpy(data.images), torch.from_numpy(data.labels)[:, None]
        for _ in range(epochs):
            order = torch.randperm(len(x))
            for start in range(0, len(x), 16):
                idx = order[start : start + 16]
                optimiser.zero_grad()
                nn.functional.binary_cross_entropy_with_logits(model(x[idx]), y[idx]).backward()
                optimiser.step()
    return model.eval()


def write_png(path: Path, image: np.ndarray) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.clip(image, 0, 1) * 65535).round().astype(np.uint16)).save(path)
    return path


def write_run(root: Path, model: nn.Module, data: BlobSet, *, stored_scale: int = 2) -> Path:
    """A run directory as `radcnn train` leaves it (model, config, split) over PNGs stored at `stored_scale` × the
    model size, with a labels.csv whose `boxes` column is in stored pixels (as the synthetic phantoms write it).
    Every image is in the test split."""
    from radcnn.config import DataConfig, RunConfig, dump_config
    from radcnn.models.checkpoint import save_model
    from radcnn.models.spec import ModelSpec

    size = data.images.shape[-1]
    rows = []
    for i, (image, label, box) in enumerate(zip(data.images, data.labels, data.boxes, strict=True)):
        stored = np.kron(image[0], np.ones((stored_scale, stored_scale), np.float32))
        rel = f"images/img{i:03d}.png"
        write_png(root / "data" / rel, stored)
        boxes = (
            []
            if box is None
            else [{"label": "nodule", **dict(zip(("x0", "y0", "x1", "y1"), np.array(box) * stored_scale, strict=True))}]
        )
        rows.append({"path": rel, "patient_id": f"P{i:03d}", "nodule": int(label), "boxes": json.dumps(boxes)})
    import pandas as pd

    labels = pd.DataFrame(rows)
    labels.to_csv(root / "data" / "labels.csv", index=False)
    run = root / "run"
    run.mkdir(parents=True)
    spec = ModelSpec("seed_cnn", (size, size), ("nodule",), thresholds=(0.5,))
    save_model(model, spec, run / "best_model.safetensors")
    config = RunConfig(data=DataConfig(source=str(root / "data" / "labels.csv"), image_size=(size, size)))
    (run / "config.yaml").write_text(dump_config(config))
    split = labels[["path", "patient_id", "nodule"]].copy()
    split["path"] = [str((root / "data" / p).resolve()) for p in split["path"]]
    split["split"] = "test"
    split.to_csv(run / "split.csv", index=False)
    return run
