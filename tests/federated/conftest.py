"""Fixtures for the federated tests: a tiny phantom dataset with three sites (the phantom's scanners) and a radcnn
config that trains the seed CNN on 32×32 images — small enough for Flower's engines on two shared cores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")  # Flower reads it at import; tests make no network calls


@pytest.fixture(scope="session")
def phantom(tmp_path_factory) -> Path:
    """labels.csv of 60 phantom patients (about 150 images) imaged at site_a, site_b and site_c."""
    from radcnn.phantom.synth import synthesize_dataset

    root = tmp_path_factory.mktemp("fed-phantom") / "data"
    result = synthesize_dataset(root, n_patients=60, size=32, fmt="png", seed=3)
    return result.csv_path


@pytest.fixture(scope="session")
def fed_config(phantom: Path, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fed-config") / "fed.yaml"
    path.write_text(
        f"""data:
  source: {phantom}
  image_size: [32, 32]
  label_columns: [nodule]
train:
  epochs: 1
  batch_size: 16
  precision: "32"
  progress_bar: false
""",
        encoding="utf-8",
    )
    return path
