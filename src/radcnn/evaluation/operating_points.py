"""Metrics at several decision thresholds, each chosen on the validation split and applied unchanged elsewhere.

A single threshold chosen on validation is one bet about the cohort it will meet: at a different prevalence or
after a scanner change, the sensitivity/specificity trade-off it bought moves. `operating_point_table` shows the
alternatives side by side so a reader can see what a different choice would have given:

* the run's own threshold (whatever `train.threshold_method` chose on val);
* val-Youden (maximum sensitivity + specificity - 1 on val);
* fixed sensitivity (e.g. 0.90, 0.95 on val: the most specific threshold that reaches it);
* fixed specificity (e.g. 0.90, 0.95 on val: the most sensitive threshold that reaches it).

Every proportion gets its exact Clopper–Pearson interval (`radcnn.evaluation.intervals`). Thresholds are never
chosen on the data being scored.
"""

from __future__ import annotations

import numpy as np

from radcnn.evaluation.arrays import clean_binary
from radcnn.evaluation.intervals import proportion_interval
from radcnn.evaluation.metrics import binary_metrics
from radcnn.evaluation.thresholds import choose_threshold

DEFAULT_SENSITIVITIES = (0.90, 0.95)
DEFAULT_SPECIFICITIES = (0.90, 0.95)
SHOWN = ("sensitivity", "specificity", "ppv", "npv", "accuracy")


def validation_thresholds(
    y_val,
    p_val,
    *,
    sensitivities=DEFAULT_SENSITIVITIES,
    specificities=DEFAULT_SPECIFICITIES,
) -> list[dict]:
    """The candidate thresholds chosen on validation: [{name, threshold, method, target, val: {...}}]."""
    data = clean_binary(y_val, p_val)
    n_pos = int(data.y.sum())
    if n_pos == 0 or n_pos == data.n:
        return []  # no trade-off to choose on one class; the run's own threshold is still scored
    choices = [("val-Youden", "youden", None)]
    choices += [(f"sensitivity ≥ {t:.2f} on val", "sensitivity", t) for t in sensitivities]
    choices += [(f"specificity ≥ {t:.2f} on val", "specificity", t) for t in specificities]
    out = []
    for name, method, target in choices:
        choice = choose_threshold(data.y, data.p, method, target=target)
        out.append(
            {
                "name": name,
                "threshold": choice.threshold,
                "method": method,
                "target": target,
                "val": {"sensitivity": choice.sensitivity, "specificity": choice.specificity},
            }
        )
    return out


def score_at(y, p, threshold: float) -> dict:
    """Sensitivity, specificity, PPV, NPV and accuracy at one threshold, each with its exact interval."""
    metrics = binary_metrics(y, p, threshold)
    return {name: proportion_interval(metrics, name) for name in SHOWN} | {
        "tp": metrics["tp"],
        "fp": metrics["fp"],
        "tn": metrics["tn"],
        "fn": metrics["fn"],
    }


def operating_point_table(
    candidates: list[dict], y, p, *, run_threshold: float, run_source: str, calibrated: np.ndarray | None = None
) -> list[dict]:
    """Each candidate threshold (plus the run's own, first) scored on (y, p).

    ``calibrated`` (optional) are calibrated probabilities of the same rows; the table then also holds the
    calibrated 0.5 threshold, i.e. "positive when the calibrated probability is at least one half".
    """
    rows = [{"name": "run threshold", "threshold": float(run_threshold), "source": run_source}]
    rows += [
        {"name": c["name"], "threshold": c["threshold"], "source": "chosen on val", "val": c["val"]} for c in candidates
    ]
    for row in rows:
        row["metrics"] = score_at(y, p, row["threshold"])
    if calibrated is not None:
        rows.append(
            {
                "name": "calibrated probability ≥ 0.5",
                "threshold": 0.5,
                "source": "calibration map fitted on val",
                "metrics": score_at(y, calibrated, 0.5),
            }
        )
    return rows
