import shutil

import numpy as np
import pandas as pd
import pytest

from radcnn.data.kfold import (
    assign_folds,
    fold_partitions,
    load_split,
    save_split,
)
from radcnn.data.manifest import Manifest
from radcnn.data.splits import patient_strata
from radcnn.errors import ConfigError, ManifestError


def _manifest(n_patients=200, seed=0, labels=("nodule",)):
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        positive = rng.random(len(labels)) < 0.3
        for k in range(rng.integers(1, 5)):
            row = {"path": f"/data/p{p}_{k}.png", "patient_id": f"P{p:04d}"}
            for j, name in enumerate(labels):
                row[name] = float(positive[j]) if rng.random() > 0.1 else np.nan  # NaN = unknown
            rows.append(row)
    return Manifest(pd.DataFrame(rows), tuple(labels))


def test_hand_computed_case_one_positive_and_one_negative_patient_per_fold():
    table = pd.DataFrame(
        {
            "path": [f"/x/{i}.png" for i in range(6)],
            "patient_id": ["A", "A", "B", "C", "D", "D"],
            "y": [1.0, 0.0, 1.0, 0.0, 0.0, 0.0],  # A and B ever positive; C and D never
        }
    )
    folds = assign_folds(Manifest(table, ("y",)), n_splits=2, seed=3)
    by_patient = dict(zip(table["patient_id"], folds, strict=True))
    assert by_patient["A"] != by_patient["B"] and by_patient["C"] != by_patient["D"]
    assert by_patient["A"] == by_patient["C"]
    # By hand: stratum "0" first, larger patient first: D (2 images) → one fold, C (1) → the other. Stratum "1":
    # A (2 images) → the fold with fewer images (C's), B → D's. So A+C and B+D: 3 images each.
    assert np.bincount(folds).tolist() == [3, 3]


def test_patients_stay_whole_and_strata_are_balanced():
    manifest = _manifest(300, labels=("nodule", "effusion"))
    folds = assign_folds(manifest, n_splits=5, seed=0)
    per_patient = pd.DataFrame({"p": manifest.table["patient_id"], "f": folds}).groupby("p")["f"].nunique()
    assert (per_patient == 1).all() and set(folds) == set(range(5))
    strata = patient_strata(manifest)
    fold_of = pd.Series(folds, index=manifest.table["patient_id"]).groupby(level=0).first()
    for key in strata.unique():
        patients = strata.index[strata == key]
        counts = np.bincount(fold_of[patients], minlength=5)
        if len(patients) >= 5:  # rarer patterns are pooled, and the pool is balanced instead
            assert counts.max() - counts.min() <= 1, key
    images = np.bincount(folds)
    assert images.max() - images.min() <= 4


def test_reproducible_from_the_seed():
    manifest = _manifest()
    first = assign_folds(manifest, n_splits=5, seed=7)
    np.testing.assert_array_equal(first, assign_folds(manifest, n_splits=5, seed=7))
    assert (first != assign_folds(manifest, n_splits=5, seed=8)).any()


def test_as_well_stratified_as_scikit_learn():
    from sklearn.model_selection import StratifiedGroupKFold

    manifest = _manifest(400, seed=2)
    strata = patient_strata(manifest)
    y = manifest.table["patient_id"].map(strata).to_numpy()
    positive = (y == "1").astype(float)

    def spread(folds):
        rates = [positive[folds == k].mean() for k in range(5)]
        return max(rates) - min(rates)

    ours = assign_folds(manifest, n_splits=5, seed=0)
    theirs = np.empty(len(y), dtype=int)
    splitter = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=0)
    for k, (_, test) in enumerate(splitter.split(np.zeros(len(y)), y, manifest.table["patient_id"])):
        theirs[test] = k
    assert spread(ours) <= spread(theirs) + 0.02


def test_fold_partitions_and_bad_arguments():
    folds = np.array([0, 1, 2, 0, 1, 2])
    assert fold_partitions(folds, 1).tolist() == ["train", "test", "train", "train", "test", "train"]
    assert fold_partitions(folds, 1, val_fold=2).tolist() == ["train", "test", "val", "train", "test", "val"]
    with pytest.raises(ConfigError):
        fold_partitions(folds, 3)
    with pytest.raises(ConfigError):
        fold_partitions(folds, 1, val_fold=1)
    with pytest.raises(ConfigError, match="cannot fill 5 folds"):
        assign_folds(_manifest(3), n_splits=5)


@pytest.fixture
def files(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    for i in range(6):
        (root / f"img{i}.png").write_bytes(bytes([i]) * 100)
    shutil.copy(root / "img0.png", root / "img5.png")  # the same image again, filed under another patient
    table = pd.DataFrame(
        {
            "path": [str(root / f"img{i}.png") for i in range(6)],
            "patient_id": ["A", "B", "C", "D", "E", "F"],
            "y": [1.0, 0.0, 1.0, 0.0, 1.0, 0.0],
        }
    )
    return Manifest(table, ("y",), source=root / "labels.csv")


def test_split_file_round_trip_on_another_machine(files, tmp_path):
    folds = assign_folds(files, n_splits=2, seed=0)
    parts = fold_partitions(folds, 0)
    hashes = [f"hash-{i}" for i in range(6)]
    path = save_split(tmp_path / "run" / "split.csv", files, partitions=parts, folds=folds, hashes=hashes)
    saved = pd.read_csv(path)
    assert saved["key"].tolist() == [f"img{i}.png" for i in range(6)]  # relative to the data root, not absolute
    moved_root = tmp_path / "elsewhere"
    shutil.copytree(files.paths[0].parent, moved_root)
    moved = Manifest(
        files.table.assign(path=[str(moved_root / f"img{i}.png") for i in range(6)]), ("y",), moved_root / "labels.csv"
    )
    loaded = load_split(path, moved.select([5, 4, 3, 2, 1, 0]))  # row order does not matter
    assert loaded["split"].tolist() == parts[::-1].tolist() and loaded["fold"].tolist() == folds[::-1].tolist()
    assert loaded["sha256"].tolist() == hashes[::-1]


def test_split_file_that_no_longer_matches_the_data_is_an_error(files, tmp_path):
    path = save_split(tmp_path / "split.csv", files.select([0, 1, 2]), partitions=np.array(["train", "val", "test"]))
    with pytest.raises(ManifestError, match="3 image\\(s\\) of the data set are not in the split file, e.g. img3.png"):
        load_split(path, files)
    with pytest.raises(ManifestError, match="1 image\\(s\\) in the split file are not in the data set, e.g. img2.png"):
        load_split(path, files.select([0, 1]))
    changed = Manifest(files.table.assign(patient_id=["Z", "B", "C", "D", "E", "F"]), ("y",), files.source)
    with pytest.raises(ManifestError, match="patient id of img0.png changed: A in the file, Z now"):
        load_split(path, changed.select([0, 1, 2]))
    with pytest.raises(ConfigError):
        save_split(tmp_path / "x.csv", files)
