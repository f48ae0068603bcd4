"""ROC AUC over several labels or classes, and the two label encodings of a multi-class task.

Training monitors validation AUC with these functions and evaluation reports them, so both compute the same
number. A multi-class task's labels come either as one column of class indices (a CSV with a ``class`` column) or
as one-hot columns (a folder per class, MedMNIST's multi-class sets); `class_index` and `one_hot` convert between
them, with NaN for an unknown label.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score


def mean_auc(targets: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean ROC-AUC over labels that have both classes among the known values (NaN if none has)."""
    aucs = []
    for j in range(targets.shape[1]):
        known = ~np.isnan(targets[:, j])
        y = targets[known, j]
        if len(np.unique(y)) == 2:
            aucs.append(roc_auc_score(y, probabilities[known, j]))
    return float(np.mean(aucs)) if aucs else float("nan")


def class_index(labels: np.ndarray) -> np.ndarray:
    """(N,) float class indices, NaN = unknown, from one index column or from one-hot columns."""
    labels = np.asarray(labels, dtype=np.float64)
    if labels.ndim == 1 or labels.shape[1] == 1:
        return labels.reshape(-1).copy()
    known = ~np.isnan(labels).any(axis=1) & (np.nansum(labels, axis=1) == 1)
    index = np.full(len(labels), np.nan)
    index[known] = np.argmax(labels[known], axis=1)
    return index


def one_hot(index: np.ndarray, n_classes: int) -> np.ndarray:
    """Class indices (NaN = unknown) → (N, K) indicator columns, unknown rows all NaN."""
    index = np.asarray(index, dtype=np.float64).reshape(-1)
    out = np.zeros((len(index), n_classes), dtype=np.float32)
    known = ~np.isnan(index)
    out[np.flatnonzero(known), index[known].astype(int)] = 1.0
    out[~known] = np.nan
    return out


def multiclass_auc(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Macro one-vs-rest ROC-AUC over the classes present (NaN when fewer than two are)."""
    index = class_index(labels)
    known = ~np.isnan(index)
    y = index[known].astype(int)
    aucs = [roc_auc_score(y == k, probabilities[known, k]) for k in np.unique(y) if 0 < (y == k).sum() < len(y)]
    return float(np.mean(aucs)) if aucs else float("nan")
