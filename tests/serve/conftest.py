"""Fixtures for serving tests: one tiny trained run (phantom DICOM, seed CNN at 48×48) shared by the session."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch

SIZE = 48


@pytest.fixture(scope="session")
def phantom(tmp_path_factory) -> Path:
    """A small phantom DICOM dataset (radcnn.data.synth): 12 patients, 64×64 images, labels.csv."""
    from radcnn.data.synth import synthesize_dataset

    out = tmp_path_factory.mktemp("serve_data") / "phantom"
    synthesize_dataset(out, n_patients=12, size=64, seed=3)
    return out


@pytest.fixture(scope="session")
def run_dir(phantom, tmp_path_factory) -> Path:
    """A finished run directory trained for 2 epochs on the phantom (a few seconds on one core)."""
    from radcnn.config import DataConfig, RunConfig, TrainConfig
    from radcnn.training.fit import fit

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = RunConfig(
            data=DataConfig(source=str(phantom / "labels.csv"), image_size=(SIZE, SIZE), workers=1),
            train=TrainConfig(epochs=2, batch_size=16, precision="32", progress_bar=False),
        )
        run = tmp_path_factory.mktemp("serve_run") / "run"
        fit(config, run)
    finally:
        torch.set_num_threads(threads)
    return run


@pytest.fixture(scope="session")
def phantom_dicoms(phantom) -> list[Path]:
    return sorted((phantom / "images").rglob("*.dcm"))


def free_port() -> int:
    """A loopback TCP port that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
