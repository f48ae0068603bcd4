"""Which client (hospital) holds which images: by a site column, or synthetic non-IID splits of any dataset.

Every scheme assigns whole PATIENTS (all images of a patient go to one client, as they would in real hospitals),
so the patient-level train/val/test split made by `radcnn.data` stays leak-free inside each client.

* ``site``: one client per distinct value of a metadata column (the phantom's scanners ``site_a``, ``site_b``,
  ``site_c``); clients are the sorted values.
* ``dirichlet`` (label skew, Hsu et al. 2019, arXiv:1909.06335): for each class of the first label, the share of
  that class's patients going to each client is drawn from Dirichlet(alpha·1); small alpha = very skewed.
* ``quantity`` (size skew): the share of ALL patients per client is drawn from Dirichlet(alpha·1), so clients
  differ in size but not in class balance; every client gets at least one patient.
* ``iid``: patients shuffled and dealt round-robin.

These are pure functions of the table, the labels and a seed (`numpy.random.Generator`); flwr-datasets has
similar partitioners for Hugging Face datasets, but radcnn's data are patient tables, not HF datasets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from radcnn.errors import ConfigError, DataError


@dataclass(frozen=True)
class Partitioning:
    """`assignment[i]` is the client index (0..K-1) of table row i; `names[k]` names client k."""

    assignment: np.ndarray
    names: tuple[str, ...]

    def rows(self, k: int) -> np.ndarray:
        return np.flatnonzero(self.assignment == k)


def partition_rows(
    table: pd.DataFrame,
    labels: np.ndarray,
    *,
    scheme: str,
    num_partitions: int = 0,
    column: str = "site",
    alpha: float = 0.5,
    seed: int = 0,
) -> Partitioning:
    """Assign every row of `table` (with a ``patient_id`` column) to a client (see the module docstring)."""
    if scheme == "site":
        return _by_column(table, column, num_partitions)
    if num_partitions < 1:
        raise ConfigError(f"partition {scheme!r} needs num-partitions ≥ 1 (the number of clients)")
    patients = table["patient_id"].astype(str).to_numpy()
    unique, inverse = np.unique(patients, return_inverse=True)
    if len(unique) < num_partitions:
        raise DataError(f"{len(unique)} patients cannot be split between {num_partitions} clients")
    rng = np.random.default_rng(seed)
    if scheme == "iid":
        order = rng.permutation(len(unique))
        owner = np.empty(len(unique), dtype=int)
        owner[order] = np.arange(len(unique)) % num_partitions
    elif scheme == "quantity":
        owner = _split_by_shares(rng.permutation(len(unique)), rng.dirichlet([alpha] * num_partitions))
        owner = _ensure_nonempty(owner, num_partitions, rng)
    elif scheme == "dirichlet":
        patient_class = _patient_classes(labels, inverse, len(unique))
        owner = np.empty(len(unique), dtype=int)
        for cls in np.unique(patient_class):
            members = rng.permutation(np.flatnonzero(patient_class == cls))
            owner[members] = _split_by_shares(np.arange(len(members)), rng.dirichlet([alpha] * num_partitions))
        owner = _ensure_nonempty(owner, num_partitions, rng)
    else:
        raise ConfigError(f"unknown partition scheme {scheme!r}; valid: site, dirichlet, quantity, iid")
    names = tuple(f"client_{k}" for k in range(num_partitions))
    return Partitioning(owner[inverse], names)


def _by_column(table: pd.DataFrame, column: str, num_partitions: int) -> Partitioning:
    if column not in table.columns:
        raise DataError(
            f"partition by {column!r} needs a {column!r} column in the data table; it has: {', '.join(table.columns)}"
        )
    values = table[column]
    if values.isna().any():
        raise DataError(f"{int(values.isna().sum())} image(s) have no {column!r}; every image needs one to be placed")
    names = tuple(sorted(values.astype(str).unique()))
    if num_partitions and num_partitions != len(names):
        raise ConfigError(
            f"the data have {len(names)} distinct {column!r} values ({', '.join(names)}) but {num_partitions} "
            "clients were asked for; run one client per site"
        )
    index = {name: k for k, name in enumerate(names)}
    return Partitioning(values.astype(str).map(index).to_numpy(dtype=int), names)


def _patient_classes(labels: np.ndarray, inverse: np.ndarray, n_patients: int) -> np.ndarray:
    """A patient's class for label skew: 1 if any of their images is positive for the first label, else 0;
    -1 when all of that label is unknown. Multi-class index labels use the patient's largest class index."""
    first = labels[:, 0]
    out = np.full(n_patients, -1.0)
    for i, value in enumerate(first):
        if not np.isnan(value):
            out[inverse[i]] = max(out[inverse[i]], value)
    return out


def _split_by_shares(items: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """owner[item] for consecutive chunks of `items` sized by `shares` (which sum to 1)."""
    cuts = (np.cumsum(shares)[:-1] * len(items)).round().astype(int)
    owner = np.empty(len(items), dtype=int)
    for k, chunk in enumerate(np.split(np.arange(len(items)), cuts)):
        owner[items[chunk]] = k
    return owner


def _ensure_nonempty(owner: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Move one patient from the largest client to each empty one (a client with nothing cannot train)."""
    owner = owner.copy()
    for empty in range(k):
        if not (owner == empty).any():
            largest = np.bincount(owner, minlength=k).argmax()
            owner[rng.choice(np.flatnonzero(owner == largest))] = empty
    return owner


def partition_report(
    table: pd.DataFrame, labels: np.ndarray, label_names: tuple[str, ...], parts: Partitioning
) -> list[dict]:
    """Per client and split: images, patients and the positives of each label (known labels only)."""
    report = []
    splits = table["split"].astype(str).to_numpy() if "split" in table.columns else np.full(len(table), "all")
    for k, name in enumerate(parts.names):
        mine = parts.assignment == k
        entry: dict = {"client": k, "name": name, "splits": {}}
        for split in ("train", "val", "test"):
            rows = mine & (splits == split)
            if not rows.any() and split == "test":
                continue
            sub = labels[rows]
            entry["splits"][split] = {
                "images": int(rows.sum()),
                "patients": int(table.loc[rows, "patient_id"].astype(str).nunique()),
                "positives": {
                    label: int(np.nansum(sub[:, j] > 0.5)) for j, label in enumerate(label_names) if j < sub.shape[1]
                },
                "known": {label: int((~np.isnan(sub[:, j])).sum()) for j, label in enumerate(label_names)},
            }
        report.append(entry)
    return report
