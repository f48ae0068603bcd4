"""Checking and cleaning the arrays every evaluation function takes.

One place decides what a valid `(y_true, y_prob[, groups])` triple is, so every metric, interval and test
treats bad input the same way:

* `y_true` holds 0/1 (bool, int or float); NaN means "label unknown" and the row is *excluded* — the number
  excluded is returned so callers can report it (nothing is dropped silently).
* `y_prob` holds finite probabilities in [0, 1]; logits or NaN predictions for a labelled row are an error,
  because a metric computed on them would be silently wrong.
* `groups` (optional) names the independent unit — normally the patient — of each row; it is recoded to
  integer codes 0..G-1 so the bootstrap can resample groups cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from radcnn.errors import DataError


@dataclass(frozen=True)
class BinaryInputs:
    """Cleaned binary inputs: only rows with a known label remain."""

    y: np.ndarray  # (n,) float64 of exactly 0.0 / 1.0
    p: np.ndarray  # (n,) float64 in [0, 1]
    n_unknown: int  # rows dropped because y_true was NaN
    group_codes: np.ndarray | None = None  # (n,) int64 in [0, n_groups), None when no groups were given
    n_groups: int = 0

    @property
    def n(self) -> int:
        return int(self.y.shape[0])


def _as_1d_float(values, name: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name}: expected numbers, got {type(values).__name__} ({exc})") from exc
    if array.ndim != 1:
        raise DataError(f"{name}: expected a 1-D array, got shape {array.shape}")
    return array


def _check_labels(y: np.ndarray, name: str) -> None:
    known = ~np.isnan(y)
    bad = known & (y != 0.0) & (y != 1.0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{name}[{i}] = {float(y[i])!r}: expected 0, 1 or NaN (unknown); {int(bad.sum())} such values")


def _check_probabilities(p: np.ndarray, known: np.ndarray, name: str) -> None:
    # Only rows with a known label matter: a NaN prediction on an unlabelled row is never used.
    bad = known & ~(np.isfinite(p) & (p >= 0.0) & (p <= 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        hint = " (logits? apply a sigmoid first)" if np.isfinite(p[i]) else ""
        raise DataError(
            f"{name}[{i}] = {float(p[i])!r}: expected a probability in [0, 1]{hint}; {int(bad.sum())} such values"
        )


def encode_groups(groups, n: int, name: str = "groups") -> tuple[np.ndarray, int]:
    """Integer codes 0..G-1 for any hashable group labels (patient ids); missing ids are an error."""
    labels = np.asarray(groups, dtype=object)
    if labels.ndim != 1:
        raise DataError(f"{name}: expected a 1-D sequence of group ids, got shape {labels.shape}")
    # sort=False: codes follow first appearance, so mixed id types (int and str) never need comparing.
    codes, uniques = pd.factorize(pd.Series(labels), sort=False)
    if codes.shape[0] != n:
        raise DataError(f"{name}: expected {n} group ids (one per row), got {codes.shape[0]}")
    if (codes < 0).any():
        i = int(np.flatnonzero(codes < 0)[0])
        raise DataError(f"{name}[{i}] is missing: every row needs a group (patient) id")
    return codes.astype(np.int64), len(uniques)


def clean_binary(y_true, y_prob, groups=None, *, name: str = "y_true", prob_name: str = "y_prob") -> BinaryInputs:
    """Validate one label column and its probabilities; drop unknown labels and recode groups.

    Raises `DataError` naming the argument, the first offending index and what was expected.
    """
    y = _as_1d_float(y_true, name)
    p = _as_1d_float(y_prob, prob_name)
    if y.shape != p.shape:
        raise DataError(f"{name} has {y.shape[0]} rows but {prob_name} has {p.shape[0]}: expected the same")
    _check_labels(y, name)
    known = ~np.isnan(y)
    _check_probabilities(p, known, prob_name)
    codes, n_groups = (None, 0)
    if groups is not None:
        codes, _ = encode_groups(groups, y.shape[0])
        # Re-encode after masking so that codes stay dense (0..G-1) over the rows actually used.
        codes, n_groups = encode_groups(codes[known], int(known.sum()))
    return BinaryInputs(y=y[known], p=p[known], n_unknown=int((~known).sum()), group_codes=codes, n_groups=n_groups)


def as_2d(values, name: str, n_columns: int | None = None) -> np.ndarray:
    """A float64 (N, C) array for multi-label inputs; a 1-D input is treated as one column."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name}: expected numbers ({exc})") from exc
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise DataError(f"{name}: expected an (N, C) array, got shape {array.shape}")
    if n_columns is not None and array.shape[1] != n_columns:
        raise DataError(f"{name}: expected {n_columns} columns (one per label name), got {array.shape[1]}")
    return array
