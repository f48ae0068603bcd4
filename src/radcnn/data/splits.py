"""Patient-level, label-stratified train/val/test splits and the leakage check that guards them.

All images of one patient land in the same partition: follow-up images of a patient are correlated, so an
image-level split would leak the patient's anatomy into the test set and inflate every metric.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from radcnn.data.leakage import check_leakage
from radcnn.data.manifest import Manifest

PARTITIONS = ("train", "val", "test")
EXTERNAL = "external"  # a held-out site (`data.hold_out_site`): never trained or tuned on


def patient_strata(manifest: Manifest) -> pd.Series:
    """One stratum key per patient: which labels the patient ever has positive (unknown counts as negative)."""
    labels = np.nan_to_num(manifest.labels(), nan=0.0) > 0.5
    frame = pd.DataFrame(labels, columns=list(manifest.label_names))
    frame["patient_id"] = manifest.table["patient_id"].to_numpy()
    per_patient = frame.groupby("patient_id", sort=True).max()
    return per_patient.apply(lambda row: "".join("1" if v else "0" for v in row), axis=1)


def split_by_patient(
    manifest: Manifest, *, val_fraction: float = 0.15, test_fraction: float = 0.15, seed: int = 0
) -> np.ndarray:
    """Assign every row to "train", "val" or "test" so that no patient spans two partitions.

    Patients are stratified by their label pattern; within each stratum they are shuffled with `seed` and cut by
    the fractions (rounded to whole patients). Strata too small to cut are pooled so that rare label patterns are
    still spread. Returns an array of partition names aligned with the manifest rows.
    """
    strata = patient_strata(manifest)
    counts = strata.value_counts()
    small = counts.index[counts < 3]
    strata = strata.where(~strata.isin(small), "pooled")
    rng = np.random.default_rng(seed)
    assignment: dict[str, str] = {}
    for key in sorted(strata.unique()):
        patients = np.array(sorted(strata.index[strata == key]))
        rng.shuffle(patients)
        n = len(patients)
        n_test = int(round(n * test_fraction))
        n_val = int(round(n * val_fraction))
        if n >= 3 and test_fraction > 0 and n_test == 0:
            n_test = 1
        if n >= 3 and val_fraction > 0 and n_val == 0:
            n_val = 1
        for i, patient in enumerate(patients):
            assignment[patient] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    result = manifest.table["patient_id"].map(assignment).to_numpy(dtype=object)
    check_leakage(manifest.table["patient_id"].to_numpy(), result)
    return result.astype(str)


def split_summary(manifest: Manifest, partitions: np.ndarray) -> pd.DataFrame:
    """Images, patients and positives per label in each partition (for the report and the CLI)."""
    rows = []
    labels = manifest.labels()
    for part in (*PARTITIONS, EXTERNAL) if (partitions == EXTERNAL).any() else PARTITIONS:
        mask = partitions == part
        row = {
            "split": part,
            "images": int(mask.sum()),
            "patients": int(manifest.table.loc[mask, "patient_id"].nunique()),
        }
        for j, name in enumerate(manifest.label_names):
            row[f"{name}_positive"] = int(np.nansum(labels[mask, j]))
        rows.append(row)
    return pd.DataFrame(rows)
