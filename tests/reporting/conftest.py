"""A tiny trained run shared by the report and comparison tests (built once per session, copied per test).

The data are real PneumoniaMNIST images from ../shared/data written as PNG files with a labels CSV that adds
fake patient ids (two images each), sex, age, view and site, so every part of the report has something to show.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

NPZ = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "pneumoniamnist_dev.npz"


def write_tiny_dataset(root: Path, n_images: int = 240, seed: int = 0) -> Path:
    """Balanced PneumoniaMNIST PNGs + labels.csv (path, patient_id, pneumonia, sex, age, site, view)."""
    from PIL import Image

    if not NPZ.is_file():
        pytest.fail(f"{NPZ} is missing: the shared data folder must sit beside the repository")
    data = np.load(NPZ)
    images, labels = data["train_images"], data["train_labels"][:, 0]
    rng = np.random.default_rng(seed)
    pos = rng.choice(np.flatnonzero(labels == 1), n_images // 2, replace=False)
    neg = rng.choice(np.flatnonzero(labels == 0), n_images // 2, replace=False)
    order = rng.permutation(np.r_[pos, neg])
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for k, index in enumerate(order):
        name = f"images/img{k:04d}.png"
        Image.fromarray(images[index]).save(root / name)
        patient = k // 2
        rows.append(
            {
                "path": name,
                "patient_id": f"P{patient:04d}",
                "pneumonia": int(labels[index]),
                "sex": "FM"[patient % 2],
                "age": 20 + (patient * 7) % 70,
                "site": "north" if patient % 3 else "south",
                "view": "AP" if patient % 4 == 0 else "PA",
            }
        )
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    return root / "labels.csv"


@pytest.fixture(scope="session")
def tiny_run_template(tmp_path_factory) -> Path:
    """A seed-CNN run trained for 2 epochs at 28×28; never modified (tests use `tiny_run` copies)."""
    from radcnn.config import DataConfig, RunConfig, TrainConfig
    from radcnn.training.fit import fit

    root = tmp_path_factory.mktemp("tiny")
    csv = write_tiny_dataset(root / "data")
    config = RunConfig(
        data=DataConfig(
            source=str(csv),
            image_size=(28, 28),
            label_columns=("pneumonia",),
            workers=1,
            val_fraction=0.25,
            test_fraction=0.3,
        ),
        train=TrainConfig(epochs=2, seed=0, progress_bar=False, precision="32"),
    )
    return fit(config, root / "run").run_dir


@pytest.fixture
def tiny_run(tiny_run_template, tmp_path) -> Path:
    """A private copy of the tiny run, so tests may add files (metrics.json, report.html) freely."""
    return Path(shutil.copytree(tiny_run_template, tmp_path / "run"))


def perturbed_copy(run: Path, dest: Path, scale: float = 0.05, seed: int = 1) -> Path:
    """A second "model" for comparisons: the run with Gaussian noise added to its weights (same data, same split)."""
    from radcnn.models.checkpoint import load_model, save_model

    shutil.copytree(run, dest, ignore=shutil.ignore_patterns("metrics*.json", "predictions*.csv", "report.*"))
    model, spec = load_model(dest / "best_model.safetensors")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(scale * parameter.abs().mean() * torch.randn(parameter.shape, generator=generator))
    save_model(model, spec, dest / "best_model.safetensors")
    return dest


@pytest.fixture(scope="session")
def perturb_run():
    """`perturbed_copy(run, dest, scale=0.05, seed=1)`: a second model on the same data, for comparisons."""
    return perturbed_copy
