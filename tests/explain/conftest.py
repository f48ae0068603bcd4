"""Fixtures for explanation tests: the blob task and a seed CNN trained on it once per session."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from radcnn.models.spec import ModelSpec


def load_blob_task():
    """Import blob_task.py by path (tests are not a package; pytest runs with --import-mode=importlib)."""
    name = "radcnn_tests_blob_task"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("blob_task.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the file executes
        spec.loader.exec_module(module)
    return sys.modules[name]


_blob_task = load_blob_task()
SIZE = 48


@pytest.fixture(scope="session")
def blob_task():
    """The blob_task helper module (make_blobs, train_seed_cnn, write_run)."""
    return _blob_task


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    with _blob_task.one_thread():
        yield


@pytest.fixture(scope="session")
def trained():
    """(model, spec): the seed CNN trained on 256 blob images at 48×48 (about 10 s on a busy 2-core machine)."""
    model = _blob_task.train_seed_cnn(_blob_task.make_blobs(256, size=SIZE, seed=0), epochs=4)
    return model, ModelSpec("seed_cnn", (SIZE, SIZE), ("nodule",), thresholds=(0.5,))


@pytest.fixture(scope="session")
def held_out():
    return _blob_task.make_blobs(40, size=SIZE, seed=7)


@pytest.fixture(scope="session")
def true_positives(trained, held_out):
    """(images (N, 1, H, W), lesion masks (N, H, W)) of held-out images with a blob the model detects."""
    from radcnn.explain.localisation import Box, boxes_mask
    from radcnn.explain.targets import ScoredModel

    model, spec = trained
    probs = ScoredModel(model, spec).predict(held_out.images)[:, 0]
    rows = [i for i in range(len(probs)) if held_out.labels[i] == 1 and probs[i] >= 0.5]
    assert len(rows) >= 8, f"the fixture model detects too few blobs ({len(rows)}); training went wrong"
    masks = np.stack([boxes_mask([Box(*held_out.boxes[i])], (SIZE, SIZE)) for i in rows])
    return held_out.images[rows], masks


@pytest.fixture(scope="session")
def run_dir(trained, held_out, tmp_path_factory):
    """A run directory over 20 held-out images stored as 96×96 PNGs (boxes in stored pixels)."""
    model, _ = trained
    subset = _blob_task.BlobSet(held_out.images[:20], held_out.labels[:20], held_out.boxes[:20])
    return _blob_task.write_run(tmp_path_factory.mktemp("explain_run"), model, subset, stored_scale=2)
