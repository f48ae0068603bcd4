import numpy as np
import pandas as pd
import pytest

from radcnn.data.leakage import check_leakage
from radcnn.data.manifest import Manifest
from radcnn.data.splits import split_by_patient, split_summary
from radcnn.errors import LeakageError


def _manifest(n_patients=200, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        positive = rng.random() < 0.3
        for k in range(rng.integers(1, 5)):  # follow-ups: 1–4 images per patient
            rows.append({"path": f"p{p}_{k}.dcm", "patient_id": f"P{p:04d}", "nodule": float(positive and k > 0)})
    return Manifest(pd.DataFrame(rows), ("nodule",))


def test_no_patient_is_in_two_partitions():
    manifest = _manifest()
    parts = split_by_patient(manifest, val_fraction=0.15, test_fraction=0.15, seed=1)
    per_patient = pd.DataFrame({"p": manifest.table["patient_id"], "s": parts}).groupby("p")["s"].nunique()
    assert (per_patient == 1).all()
    assert set(parts) == {"train", "val", "test"}


def test_fractions_and_stratification_by_patient():
    manifest = _manifest(400)
    parts = split_by_patient(manifest, val_fraction=0.2, test_fraction=0.2, seed=0)
    table = manifest.table.assign(split=parts)
    patients = table.groupby("patient_id").agg(split=("split", "first"), pos=("nodule", "max"))
    share = patients["split"].value_counts(normalize=True)
    assert share["test"] == pytest.approx(0.2, abs=0.02) and share["val"] == pytest.approx(0.2, abs=0.02)
    prevalence = patients.groupby("split")["pos"].mean()
    assert prevalence.max() - prevalence.min() < 0.03  # positive-patient share equal in every split


def test_split_is_reproducible_for_a_seed():
    manifest = _manifest()
    a = split_by_patient(manifest, seed=3)
    assert (a == split_by_patient(manifest, seed=3)).all()
    assert (a != split_by_patient(manifest, seed=4)).any()


def test_leakage_check_names_offending_patients_and_identical_images():
    with pytest.raises(LeakageError, match=r"1 patient\(s\) in more than one partition: P2 \(test/train\)"):
        check_leakage(["P1", "P2", "P2"], ["train", "train", "test"])
    with pytest.raises(LeakageError, match="identical image"):
        check_leakage(["P1", "P2"], ["train", "test"], content_hashes=["abc", "abc"])
    check_leakage(["P1", "P2"], ["train", "test"], content_hashes=["abc", "def"])


def test_summary_counts():
    manifest = _manifest(50)
    parts = split_by_patient(manifest, seed=0)
    summary = split_summary(manifest, parts).set_index("split")
    assert summary["images"].sum() == len(manifest)
    assert summary["nodule_positive"].sum() == manifest.table["nodule"].sum()
