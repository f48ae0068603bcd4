from pathlib import Path

import numpy as np
import pytest

NPZ = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "pneumoniamnist_dev.npz"


def write_balanced_subset(path: Path, sizes: dict[str, int]) -> Path:
    """Half normal, half pneumonia per split: the dev train copy is 90% pneumonia, so a prefix would be one class."""
    source = np.load(NPZ)
    arrays = {}
    for split, n in sizes.items():
        labels = source[f"{split}_labels"][:, 0]
        rows = np.concatenate([np.flatnonzero(labels == c)[: n // 2] for c in (0, 1)])
        arrays[f"{split}_images"] = source[f"{split}_images"][rows]
        arrays[f"{split}_labels"] = source[f"{split}_labels"][rows]
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="module")
def small_npz(tmp_path_factory):
    return write_balanced_subset(
        tmp_path_factory.mktemp("npz") / "pneumoniamnist.npz", {"train": 320, "val": 96, "test": 64}
    )


@pytest.fixture
def balanced_npz():
    """The subset writer itself, for tests that need other sizes."""
    return write_balanced_subset
