"""Confidence intervals for proportions that cannot overstate: Clopper–Pearson (exact) and Wilson score.

A percentile bootstrap of a proportion with 0 or all successes collapses to a point (sensitivity 14/14 →
"1.000–1.000"), claiming a certainty 14 cases cannot give. The exact binomial interval of Clopper & Pearson
(1934) keeps its coverage at the edges: for 14/14 the 95% interval is 0.768–1.000. Every proportion in an
evaluation (sensitivity, specificity, PPV, NPV, accuracy, prevalence) therefore gets an exact interval;
ranking metrics (ROC AUC, average precision) and continuous scores (Brier, ECE) keep the patient bootstrap.

* `clopper_pearson(k, n)`: the exact interval from the beta distribution (``scipy.stats.beta``);
  ``low = Beta(alpha/2; k, n - k + 1)`` (0 when k = 0) and ``high = Beta(1 - alpha/2; k + 1, n - k)`` (1 when k = n).
* `wilson(k, n)`: the Wilson score interval (closed form), offered for comparison.
* `proportion_counts(metrics)`: the (successes, trials) of each proportion from a confusion matrix.

Both intervals treat images as independent. When patients contribute several images, correlated images make
that too narrow; `radcnn.reporting.evaluate_run` then reports the union of the exact interval and the patient
bootstrap interval (method ``"clopper-pearson ∪ patient bootstrap"``), whichever reaches further on each side.
An undefined proportion (n = 0) has NaN bounds.
"""

from __future__ import annotations

import math
from statistics import NormalDist

from radcnn.errors import ConfigError, UnknownNameError

CLOPPER_PEARSON = "clopper-pearson"
WILSON = "wilson"
BOOTSTRAP = "percentile bootstrap over patients"
UNION = "clopper-pearson ∪ patient bootstrap"

# successes / trials of each proportion, in confusion-matrix counts
PROPORTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "prevalence": (("tp", "fn"), ("tp", "fn", "tn", "fp")),
    "accuracy": (("tp", "tn"), ("tp", "fn", "tn", "fp")),
    "sensitivity": (("tp",), ("tp", "fn")),
    "recall": (("tp",), ("tp", "fn")),
    "specificity": (("tn",), ("tn", "fp")),
    "precision": (("tp",), ("tp", "fp")),
    "ppv": (("tp",), ("tp", "fp")),
    "npv": (("tn",), ("tn", "fn")),
}


def _check(k: int, n: int, alpha: float) -> None:
    if not 0.0 < float(alpha) < 1.0:
        raise ConfigError(f"alpha = {alpha!r}: expected a number in (0, 1), e.g. 0.05 for a 95% interval")
    if n < 0 or k < 0 or k > n:
        raise ConfigError(f"proportion {k}/{n}: expected 0 <= successes <= trials")


def clopper_pearson(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Exact binomial (Clopper–Pearson) interval of k successes in n trials; (nan, nan) when n = 0."""
    from scipy.stats import beta

    _check(k, n, alpha)
    if n == 0:
        return float("nan"), float("nan")
    low = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


def wilson(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval of k successes in n trials; (nan, nan) when n = 0."""
    _check(k, n, alpha)
    if n == 0:
        return float("nan"), float("nan")
    z = NormalDist().inv_cdf(1 - alpha / 2)
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion_counts(metrics: dict, name: str) -> tuple[int, int]:
    """(successes, trials) of proportion `name` from a `binary_metrics` result's tp/fp/tn/fn."""
    top, bottom = PROPORTIONS[name]
    return int(sum(metrics[c] for c in top)), int(sum(metrics[c] for c in bottom))


def proportion_interval(metrics: dict, name: str, *, alpha: float = 0.05, method: str = CLOPPER_PEARSON) -> dict:
    """The interval of one proportion as a dict (estimate, low, high, successes, trials, method)."""
    if method not in (CLOPPER_PEARSON, WILSON):
        raise UnknownNameError("proportion interval method", method, [CLOPPER_PEARSON, WILSON])
    k, n = proportion_counts(metrics, name)
    low, high = (clopper_pearson if method == CLOPPER_PEARSON else wilson)(k, n, alpha)
    return {
        "estimate": k / n if n else float("nan"),
        "low": low,
        "high": high,
        "successes": k,
        "trials": n,
        "method": method,
        "alpha": float(alpha),
    }
