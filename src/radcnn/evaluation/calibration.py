"""Calibration: expected calibration error (ECE) and the data behind a reliability diagram.

Binning convention (used everywhere in radcnn): bins are left-closed, ``[e_k, e_{k+1})``, except the last,
which is closed so that a probability of exactly 1.0 is counted. This matches "predicted positive means
prob >= threshold" elsewhere in the package.

* ``strategy="uniform"``: ``n_bins`` equal-width bins on [0, 1] (the usual ECE of Guo et al. 2017).
* ``strategy="quantile"``: edges at the quantiles of ``y_prob`` (about equal counts per bin); the outer edges
  are pinned to 0 and 1, and edges that coincide because of tied probabilities are merged, so fewer bins may
  result.

ECE = sum_k (n_k / n) * |observed fraction_k - mean predicted_k|, over non-empty bins. `weighted_ece` computes
it for many weight vectors at once (the bootstrap); the bin edges then stay those of the full sample.
"""

from __future__ import annotations

import numpy as np

from radcnn.errors import ConfigError, UnknownNameError
from radcnn.evaluation.arrays import clean_binary

STRATEGIES = ("uniform", "quantile")


def _check_n_bins(n_bins: int) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise ConfigError(f"n_bins = {n_bins!r}: expected a positive integer")
    return int(n_bins)


def calibration_bin_edges(y_prob: np.ndarray, n_bins: int = 10, strategy: str = "uniform") -> np.ndarray:
    """Increasing bin edges on [0, 1] (first 0.0, last 1.0) for the given strategy."""
    n_bins = _check_n_bins(n_bins)
    if strategy == "uniform":
        return np.linspace(0.0, 1.0, n_bins + 1)
    if strategy == "quantile":
        p = np.asarray(y_prob, dtype=np.float64)
        if p.size == 0:
            return np.linspace(0.0, 1.0, n_bins + 1)
        edges = np.quantile(p, np.linspace(0.0, 1.0, n_bins + 1))
        edges[0], edges[-1] = 0.0, 1.0
        return np.unique(edges)
    raise UnknownNameError("calibration strategy", strategy, list(STRATEGIES))


def assign_bins(y_prob: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index 0..len(edges)-2 of each probability, left-closed bins with the last one closed."""
    # side="right" on the inner edges: a value equal to an edge goes to the bin that starts there.
    return np.searchsorted(edges[1:-1], np.asarray(y_prob, dtype=np.float64), side="right")


def weighted_ece(
    y: np.ndarray, p: np.ndarray, weights: np.ndarray, n_bins: int = 10, strategy: str = "uniform"
) -> np.ndarray:
    """ECE for each row of ``weights`` (B, n): row b counts item i ``weights[b, i]`` times.

    ``y`` and ``p`` must already be clean (see `clean_binary`). Returns (B,) with NaN where a row has zero
    total weight.
    """
    edges = calibration_bin_edges(p, n_bins, strategy)
    bins = assign_bins(p, edges)
    # Column k of `residual` holds (y - p) for the items of bin k and 0 elsewhere; then for each resample
    # (weights @ residual)[b, k] = n_k * (observed_k - predicted_k), so ECE = sum_k |that| / total weight.
    residual = np.zeros((y.shape[0], len(edges) - 1))
    residual[np.arange(y.shape[0]), bins] = y - p
    weights = np.atleast_2d(weights)
    total = weights.sum(axis=1)
    gap = np.abs(weights @ residual).sum(axis=1)
    out = np.full(weights.shape[0], np.nan)
    np.divide(gap, total, out=out, where=total > 0)
    return out


def expected_calibration_error(y_true, y_prob, n_bins: int = 10, strategy: str = "uniform") -> float:
    """Expected calibration error of binary probabilities; NaN labels are excluded; NaN if nothing is left."""
    data = clean_binary(y_true, y_prob)
    if data.n == 0:
        return float("nan")
    return float(weighted_ece(data.y, data.p, np.ones((1, data.n)), n_bins, strategy)[0])


def calibration_curve_data(y_true, y_prob, n_bins: int = 10, strategy: str = "uniform") -> dict:
    """Everything a reliability diagram needs, as JSON-friendly lists.

    Keys: ``strategy``, ``n``, ``n_unknown``, ``bin_edges`` (len B+1), ``counts`` (B ints),
    ``mean_predicted`` and ``observed_fraction`` (B floats, NaN for an empty bin), ``ece`` and ``mce``
    (maximum calibration error over non-empty bins).
    """
    data = clean_binary(y_true, y_prob)
    edges = calibration_bin_edges(data.p, n_bins, strategy)
    n_out = len(edges) - 1
    bins = assign_bins(data.p, edges)
    counts = np.bincount(bins, minlength=n_out).astype(np.int64)
    sum_p = np.bincount(bins, weights=data.p, minlength=n_out)
    sum_y = np.bincount(bins, weights=data.y, minlength=n_out)
    mean_p = np.full(n_out, np.nan)
    frac_y = np.full(n_out, np.nan)
    filled = counts > 0
    mean_p[filled] = sum_p[filled] / counts[filled]
    frac_y[filled] = sum_y[filled] / counts[filled]
    gaps = np.abs(frac_y[filled] - mean_p[filled])
    ece = float((counts[filled] * gaps).sum() / data.n) if data.n else float("nan")
    return {
        "strategy": strategy,
        "n": data.n,
        "n_unknown": data.n_unknown,
        "bin_edges": edges.tolist(),
        "counts": counts.tolist(),
        "mean_predicted": mean_p.tolist(),
        "observed_fraction": frac_y.tolist(),
        "ece": ece,
        "mce": float(gaps.max()) if gaps.size else float("nan"),
    }
