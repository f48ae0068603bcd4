"""Stratified group k-fold by patient, and split files that can be saved and shared.

Folds: every patient lands in exactly one fold; patients are stratified by their label pattern (which labels the
patient ever has positive, as in :func:`radcnn.data.splits.patient_strata`), so each fold sees about the same mix.
Within a stratum, patients are shuffled with the seed, then placed largest first (by image count) into the fold that
holds the fewest patients of that stratum, ties broken by the fewest images overall — a greedy rule that keeps both
the stratum counts (within one patient) and the image counts balanced, and is a pure function of manifest and seed.

The leakage checks (patients, identical pixels) that every split passes are in `radcnn.data.leakage`.

Split file: a CSV with one row per image (``key``, ``patient_id``, ``split`` and/or ``fold``, optionally ``sha256``).
``key`` is the image path relative to the data set's root, so a split saved on one machine loads on another.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from radcnn.data.leakage import check_leakage
from radcnn.data.manifest import Manifest
from radcnn.data.splits import patient_strata
from radcnn.errors import ConfigError, ManifestError
from radcnn.io import atomic_path

log = logging.getLogger(__name__)


def assign_folds(manifest: Manifest, n_splits: int = 5, *, seed: int = 0) -> np.ndarray:
    """Fold index (0 … n_splits-1) for every manifest row; no patient spans two folds."""
    if n_splits < 2:
        raise ConfigError(f"k-fold needs at least 2 folds, got {n_splits}")
    patients = manifest.table["patient_id"].astype(str)
    n_patients = patients.nunique()
    if n_patients < n_splits:
        raise ConfigError(f"{n_patients} patient(s) cannot fill {n_splits} folds")
    strata = patient_strata(manifest)
    strata.index = strata.index.astype(str)
    # Label patterns held by fewer patients than folds cannot be spread; pool them (as split_by_patient does).
    counts = strata.value_counts()
    strata = strata.where(~strata.isin(counts.index[counts < n_splits]), "pooled")
    images_per_patient = patients.value_counts()
    rng = np.random.default_rng(seed)
    fold_images = np.zeros(n_splits, dtype=np.int64)
    assignment: dict[str, int] = {}
    for key in sorted(strata.unique()):
        members = np.array(sorted(strata.index[strata == key]))
        rng.shuffle(members)
        # Largest patients first: they are the hardest to balance, small ones fill the gaps afterwards.
        sizes = images_per_patient.reindex(members).to_numpy()
        members = members[np.argsort(-sizes, kind="stable")]
        stratum_count = np.zeros(n_splits, dtype=np.int64)
        for patient in members:
            candidates = np.flatnonzero(stratum_count == stratum_count.min())
            fold = int(candidates[np.argmin(fold_images[candidates])])
            assignment[patient] = fold
            stratum_count[fold] += 1
            fold_images[fold] += images_per_patient[patient]
    folds = patients.map(assignment).to_numpy(dtype=np.int64)
    check_leakage(patients.to_numpy(), folds)
    return folds


def fold_partitions(folds: np.ndarray, test_fold: int, *, val_fold: int | None = None) -> np.ndarray:
    """Partition names for one round of k-fold: `test_fold` → "test", `val_fold` (if any) → "val", rest "train"."""
    folds = np.asarray(folds)
    n_splits = int(folds.max()) + 1
    for name, fold in (("test_fold", test_fold), ("val_fold", val_fold)):
        if fold is not None and not 0 <= fold < n_splits:
            raise ConfigError(f"{name} must lie in 0…{n_splits - 1}, got {fold}")
    if val_fold is not None and val_fold == test_fold:
        raise ConfigError("val_fold and test_fold must differ")
    parts = np.full(len(folds), "train", dtype=object)
    parts[folds == test_fold] = "test"
    if val_fold is not None:
        parts[folds == val_fold] = "val"
    return parts.astype(str)


def split_key(manifest: Manifest) -> list[str]:
    """Machine-independent row keys: each path relative to the data set's root when it lies below it."""
    root = _root(manifest)
    keys = []
    for path in manifest.table["path"].astype(str):
        if root is not None and path.startswith(str(root) + os.sep):
            path = Path(path).relative_to(root).as_posix()
        keys.append(path)
    return keys


def _root(manifest: Manifest) -> Path | None:
    if manifest.source is None:
        return None
    source = Path(manifest.source).resolve()
    return source if source.is_dir() else source.parent


def save_split(
    path: str | Path,
    manifest: Manifest,
    *,
    partitions: np.ndarray | None = None,
    folds: np.ndarray | None = None,
    hashes: list[str] | None = None,
) -> Path:
    """Write the split (partitions and/or folds, aligned with the manifest rows) as a CSV, atomically."""
    if partitions is None and folds is None:
        raise ConfigError("save_split needs partitions, folds or both")
    frame = pd.DataFrame({"key": split_key(manifest), "patient_id": manifest.table["patient_id"].astype(str)})
    if partitions is not None:
        frame["split"] = np.asarray(partitions).astype(str)
    if folds is not None:
        frame["fold"] = np.asarray(folds).astype(np.int64)
    if hashes is not None:
        frame["sha256"] = hashes
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return Path(path)


def load_split(path: str | Path, manifest: Manifest) -> pd.DataFrame:
    """Read a split file back, aligned row by row with `manifest` (columns ``split`` and/or ``fold``).

    Every manifest image must be in the file with the same patient id, and the file must hold no image the manifest
    lacks: a split that no longer matches its data is an error, not a silent partial match.
    """
    path = Path(path)
    try:
        saved = pd.read_csv(path, dtype={"key": str, "patient_id": str, "split": str}, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ManifestError(path, f"not a readable split file ({exc})") from None
    if "key" not in saved.columns or not {"split", "fold"} & set(saved.columns):
        raise ManifestError(path, "a split file needs the columns key and split or fold")
    duplicated = saved.index[saved["key"].duplicated()]
    if len(duplicated):
        raise ManifestError(path, f"image {saved.at[duplicated[0], 'key']} listed twice", row=int(duplicated[0]) + 2)
    by_key = saved.set_index("key")
    keys = split_key(manifest)
    missing = [k for k in keys if k not in by_key.index]
    if missing:
        raise ManifestError(
            path, f"{len(missing)} image(s) of the data set are not in the split file, e.g. {missing[0]}"
        )
    extra = sorted(set(by_key.index) - set(keys))
    if extra:
        raise ManifestError(path, f"{len(extra)} image(s) in the split file are not in the data set, e.g. {extra[0]}")
    aligned = by_key.loc[keys].reset_index()
    patients = manifest.table["patient_id"].astype(str).to_numpy()
    changed = np.flatnonzero(aligned["patient_id"].astype(str).to_numpy() != patients)
    if len(changed):
        i = int(changed[0])
        raise ManifestError(
            path, f"patient id of {keys[i]} changed: {aligned.at[i, 'patient_id']} in the file, {patients[i]} now"
        )
    return aligned[[c for c in ("split", "fold", "sha256") if c in aligned.columns]]
