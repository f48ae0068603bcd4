"""Scoring one label of one cohort: metrics at a threshold and 95% intervals that name their method.

Shared by the internal evaluation (`radcnn.reporting.evaluate_run`), cross-validation and the external cohorts
(`radcnn.reporting.cohorts`), so every table in metrics.json and the report is computed the same way.
"""

from __future__ import annotations

import math

import numpy as np

from radcnn.evaluation.bootstrap import metrics_with_ci
from radcnn.evaluation.intervals import BOOTSTRAP, PROPORTIONS, UNION, proportion_interval
from radcnn.evaluation.metrics import SCALAR_METRICS, binary_metrics

ONE_CLASS = "undefined — one class"


def score_label(y, p, groups, threshold: float, source: str, *, n_boot: int, seed: int) -> dict:
    """One label's metrics at `threshold` with 95% intervals (`interval_rows`; no bootstrap when n_boot is 0);
    rows with an unknown (NaN) label are left out and counted. One class only: ``auc_note`` says AUC is undefined."""
    y, p, groups = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64), np.asarray(groups)
    known = ~np.isnan(y)
    metrics = binary_metrics(y[known], p[known], threshold=threshold)
    boot = metrics_with_ci(y[known], p[known], groups[known], threshold, n_boot=n_boot, seed=seed) if n_boot > 0 else {}
    one_patient_per_image = len(np.unique(groups[known])) == int(known.sum())
    entry = {
        "threshold": float(threshold),
        "threshold_source": source,
        "metrics": metrics,
        "ci95": interval_rows(metrics, boot, one_patient_per_image=one_patient_per_image),
        "unknown_labels": int((~known).sum()),
    }
    if metrics["n_positive"] == 0 or metrics["n_negative"] == 0:
        entry["auc_note"] = ONE_CLASS
    return entry


def interval_rows(metrics: dict, boot: dict, *, one_patient_per_image: bool) -> dict:
    """The 95% interval of every metric, each naming its method.

    Proportions get the exact Clopper–Pearson interval, which never collapses to a point at 0 or n successes; when
    patients contribute several images it is widened to the patient-bootstrap interval where that reaches
    further (correlated images make a per-image interval too narrow). AUC, average precision, F1, balanced
    accuracy, Brier and ECE keep the percentile patient bootstrap (none without resamples).
    """
    out: dict[str, dict] = {}
    for name in SCALAR_METRICS:
        if name in PROPORTIONS:
            exact = proportion_interval(metrics, name)
            ci = boot.get(name)
            if ci is not None and not one_patient_per_image:
                exact["low"] = _widest(min, exact["low"], ci["low"])
                exact["high"] = _widest(max, exact["high"], ci["high"])
                exact["method"] = UNION
            out[name] = exact
        elif name in boot:
            out[name] = {**boot[name], "method": BOOTSTRAP}
    return out


def _widest(pick, a: float, b: float) -> float:
    defined = [v for v in (a, b) if v is not None and not math.isnan(v)]
    return float(pick(defined)) if defined else float("nan")


def ci_method(n_boot: int, seed: int) -> str:
    boot = f"percentile bootstrap over patients ({n_boot} resamples, seed {seed})" if n_boot > 0 else "none"
    return (
        "proportions: Clopper–Pearson exact (widened to the patient bootstrap when patients have several images); "
        f"AUC, AP, F1, Brier, ECE: {boot}"
    )


def strict_json(value):
    """A copy of ``value`` that is strict JSON: NaN and infinities become null (an undefined AUC is null)."""
    if isinstance(value, dict):
        return {str(k): strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
