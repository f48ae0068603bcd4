"""Comparing the ROC AUCs of two models scored on the same cases.

* `delong_test`: DeLong, DeLong & Clarke-Pearson (1988), "Comparing the areas under two or more correlated
  receiver operating characteristic curves: a nonparametric approach", Biometrics 44:837-845, computed with
  the fast mid-rank algorithm of Sun & Xu (2014), IEEE Signal Processing Letters 21:1389-1393. It treats
  every row as an independent case: right for one image per patient, anti-conservative (p too small) when
  patients contribute several correlated images.
* `paired_bootstrap_auc_difference`: resamples patients (``groups``) and scores both models on each
  resample, so it respects within-patient correlation. The p-value follows pROC's bootstrap test:
  z = difference / standard deviation of the resampled differences, two-sided normal.

The difference is always ``auc_a - auc_b``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np

from radcnn.errors import ConfigError
from radcnn.evaluation.arrays import clean_binary
from radcnn.evaluation.bootstrap import check_bootstrap_args, resample_weights
from radcnn.evaluation.metrics import weighted_binary_metrics

_NORMAL = NormalDist()


@dataclass(frozen=True)
class AUCComparison:
    """Two AUCs on the same cases, their difference (a - b), its standard error, test and interval."""

    auc_a: float
    auc_b: float
    diff: float
    se: float
    z: float
    p_value: float  # two-sided, H0: equal AUCs
    ci_low: float  # (1 - alpha) interval of the difference
    ci_high: float
    method: str  # "delong" | "paired_bootstrap"
    alpha: float
    n: int
    n_positive: int
    n_negative: int
    n_boot: int | None = None
    n_valid: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given the mean of the ranks they span (the Mann-Whitney convention)."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], ordered.shape[0]]  # exclusive
    ranks = np.empty(values.shape[0])
    ranks[order] = np.repeat((starts + 1 + ends) / 2.0, ends - starts)
    return ranks


def delong_components(y: np.ndarray, p: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC and DeLong's structural components of clean binary data (Sun & Xu 2014, Algorithm 1).

    ``v10[i]`` (one per positive) is the fraction of negatives it outscores (ties 1/2); ``v01[j]`` (one per
    negative) the fraction of positives that outscore it. Their means are both the AUC.
    """
    pos, neg = p[y == 1], p[y == 0]
    m, n = pos.shape[0], neg.shape[0]
    ranks_all = midranks(np.r_[pos, neg])
    # A positive's rank among all, minus its rank among positives, counts the negatives below it.
    v10 = (ranks_all[:m] - midranks(pos)) / n
    v01 = 1.0 - (ranks_all[m:] - midranks(neg)) / m
    auc = (ranks_all[:m].sum() - m * (m + 1) / 2.0) / (m * n)
    return float(auc), v10, v01


def _clean_pair(y_true, prob_a, prob_b):
    a = clean_binary(y_true, prob_a, prob_name="prob_a")
    b = clean_binary(y_true, prob_b, prob_name="prob_b")
    return a, b


def _p_value(z: float) -> float:
    return float(2.0 * _NORMAL.cdf(-abs(z))) if np.isfinite(z) else float("nan")


def _z(diff: float, se: float) -> float:
    return diff / se if np.isfinite(se) and se > 0 else float("nan")


def delong_test(y_true, prob_a, prob_b, *, alpha: float = 0.05) -> AUCComparison:
    """DeLong's test for two correlated AUCs (fast version); NaN labels excluded.

    Undefined parts are NaN: the AUCs without both classes, the standard error with fewer than two cases of a
    class, and z / p-value when the standard error is 0 (e.g. identical predictions).
    """
    if not 0.0 < float(alpha) < 1.0:
        raise ConfigError(f"alpha = {alpha!r}: expected a number in (0, 1), e.g. 0.05 for a 95% interval")
    a, b = _clean_pair(y_true, prob_a, prob_b)
    m = int(a.y.sum())
    n = a.n - m
    nan = float("nan")
    if m == 0 or n == 0:
        return AUCComparison(nan, nan, nan, nan, nan, nan, nan, nan, "delong", alpha, a.n, m, n)
    auc_a, v10_a, v01_a = delong_components(a.y, a.p)
    auc_b, v10_b, v01_b = delong_components(b.y, b.p)
    diff = auc_a - auc_b
    if m >= 2 and n >= 2:
        s10 = np.cov(np.vstack([v10_a, v10_b]))  # 2x2, ddof=1, over positives
        s01 = np.cov(np.vstack([v01_a, v01_b]))  # over negatives
        contrast = np.array([1.0, -1.0])
        var = contrast @ (s10 / m + s01 / n) @ contrast
        se = float(np.sqrt(max(var, 0.0)))
    else:
        se = nan
    z = _z(diff, se)
    half = _NORMAL.inv_cdf(1 - alpha / 2) * se
    return AUCComparison(
        auc_a=auc_a,
        auc_b=auc_b,
        diff=diff,
        se=se,
        z=z,
        p_value=_p_value(z),
        ci_low=diff - half,
        ci_high=diff + half,
        method="delong",
        alpha=float(alpha),
        n=a.n,
        n_positive=m,
        n_negative=n,
    )


def paired_bootstrap_auc_difference(
    y_true,
    prob_a,
    prob_b,
    groups,
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int | np.random.Generator = 0,
) -> AUCComparison:
    """Patient-level paired bootstrap of ``auc_a - auc_b``: percentile interval, pROC-style z and p-value.

    Both models are scored on the very same resamples. Resamples holding one class are dropped and counted
    (``n_valid``). ``groups=None`` resamples rows.
    """
    check_bootstrap_args(n_boot, alpha)
    a, b = _clean_pair(y_true, prob_a, prob_b)
    groups_used = clean_binary(y_true, prob_a, groups) if groups is not None else None
    if groups_used is None:
        codes, n_groups = np.arange(a.n, dtype=np.int64), a.n
    else:
        codes, n_groups = groups_used.group_codes, groups_used.n_groups
    ones = np.ones((1, a.n))
    auc_a = float(weighted_binary_metrics(a.y, a.p, ones, names=["roc_auc"])["roc_auc"][0])
    auc_b = float(weighted_binary_metrics(b.y, b.p, ones, names=["roc_auc"])["roc_auc"][0])
    diffs = []
    for weights in resample_weights(codes, n_groups, n_boot, seed):
        da = weighted_binary_metrics(a.y, a.p, weights, names=["roc_auc"])["roc_auc"]
        db = weighted_binary_metrics(b.y, b.p, weights, names=["roc_auc"])["roc_auc"]
        diffs.append(da - db)
    samples = np.concatenate(diffs)
    valid = samples[~np.isnan(samples)]
    diff = auc_a - auc_b
    if valid.size >= 2:
        low, high = (float(v) for v in np.quantile(valid, [alpha / 2, 1 - alpha / 2]))
        se = float(valid.std(ddof=1))
    else:
        low = high = se = float("nan")
    z = _z(diff, se)
    m = int(a.y.sum())
    return AUCComparison(
        auc_a=auc_a,
        auc_b=auc_b,
        diff=diff,
        se=se,
        z=z,
        p_value=_p_value(z),
        ci_low=low,
        ci_high=high,
        method="paired_bootstrap",
        alpha=float(alpha),
        n=a.n,
        n_positive=m,
        n_negative=a.n - m,
        n_boot=int(n_boot),
        n_valid=int(valid.size),
    )
