"""The report's external-validation and operating-point sections, as JSON-ready data plus their figures.

`external_section` sets each external cohort (a held-out site, an `--external` dataset) beside the internal
test split: the same metrics with their 95% intervals and interval methods, the threshold carried over
unchanged, calibration on both (ECE before and after the validation-fitted calibration map, and one
reliability diagram with every cohort), and the prior-shift estimate. The "shift gap" is the internal minus the
external ROC AUC. `operating_section` lists the metrics at the alternative thresholds chosen on validation.
"""

from __future__ import annotations

import numpy as np

from radcnn.reporting.plots import BLUE, GREEN, GREY, ORANGE, VERMILION, _figure, _style, figure_png
from radcnn.reporting.report_data import METRIC_ROWS

COLOURS = (BLUE, VERMILION, GREEN, ORANGE)
SIDE_BY_SIDE = ("roc_auc", "pr_auc", "accuracy", "sensitivity", "specificity", "precision", "npv", "brier", "ece")
OPERATING_COLUMNS = ("sensitivity", "specificity", "ppv", "npv", "accuracy")


def cell(entry: dict, key: str) -> dict:
    """One metric of one cohort: estimate, interval, its method, and a note when undefined."""
    ci = entry.get("ci95", {}).get(key) or {}
    note = entry.get("auc_note") if key in ("roc_auc", "pr_auc") else None
    estimate = entry["metrics"].get(key)
    if note is None and (estimate is None or estimate != estimate):
        note = "undefined"
    return {
        "estimate": estimate,
        "low": ci.get("low"),
        "high": ci.get("high"),
        "method": ci.get("method"),
        "note": note,
    }


def _gap(internal: dict, external: dict) -> float | None:
    a, b = internal["metrics"].get("roc_auc"), external["metrics"].get("roc_auc")
    if a is None or b is None or a != a or b != b:
        return None
    return float(a) - float(b)


def external_section(metrics: dict, figures: dict[str, bytes]) -> dict:
    """{"cohorts": [...], "labels": {label: {"rows", "calibration", "prior_shift", "gaps", "figure"}}}; empty
    when the run has no external cohort. Adds one reliability figure per label to ``figures``."""
    cohorts = metrics.get("external") or {}
    if not cohorts:
        return {}
    titles = dict(METRIC_ROWS)
    out = {
        "cohorts": [
            {
                "name": name,
                "kind": c["kind"],
                "source": c["source"],
                "n_images": c["n_images"],
                "n_patients": c["n_patients"],
            }
            for name, c in cohorts.items()
        ],
        "labels": {},
    }
    for label, internal in metrics["labels"].items():
        present = {name: c["labels"][label] for name, c in cohorts.items() if label in c["labels"]}
        rows = [
            {
                "key": key,
                "name": titles.get(key, key),
                "internal": cell(internal, key),
                "external": [cell(entry, key) for entry in present.values()],
            }
            for key in SIDE_BY_SIDE
        ]
        curves = {"internal test": internal.get("calibration", {})}
        curves.update({name: entry.get("calibration", {}) for name, entry in present.items()})
        calibration = [
            {
                "cohort": name,
                "ece": (curve.get("raw") or {}).get("ece"),
                "ece_calibrated": (curve.get("calibrated") or {}).get("ece"),
                "method": curve.get("method"),
            }
            for name, curve in curves.items()
        ]
        figure = f"external_calibration_{label}"
        figures[figure] = reliability_comparison_figure(curves, label=label)
        out["labels"][label] = {
            "threshold": internal["threshold"],
            "threshold_source": internal["threshold_source"],
            "rows": rows,
            "calibration": calibration,
            "prior_shift": [{"cohort": n, **e["prior_shift"]} for n, e in present.items() if e.get("prior_shift")],
            "gaps": [{"cohort": n, "auc_gap": _gap(internal, e)} for n, e in present.items()],
            "figure": figure,
        }
    return out


def operating_section(metrics: dict) -> dict:
    """{label: [rows]}: each threshold chosen on val, scored on the test split with exact intervals."""
    out = {}
    for label, entry in metrics["labels"].items():
        rows = []
        for point in entry.get("operating_points", []):
            rows.append(
                {
                    "name": point["name"],
                    "threshold": point["threshold"],
                    "source": point["source"],
                    "cells": [point["metrics"][key] for key in OPERATING_COLUMNS],
                }
            )
        if rows:
            out[label] = rows
    return out


def reliability_comparison_figure(curves: dict[str, dict], *, label: str = "") -> bytes:
    """One reliability diagram with a line per cohort (raw model probabilities), ECE in the legend."""
    fig = _figure((5.2, 4.2))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color=GREY, linestyle="--", linewidth=0.8, label="perfectly calibrated")
    for index, (name, curve) in enumerate(curves.items()):
        raw = curve.get("raw") or {}
        counts = np.asarray(raw.get("counts") or [], dtype=float)
        if not counts.size or counts.sum() == 0:
            continue
        filled = counts > 0
        predicted = np.asarray([np.nan if v is None else v for v in raw["mean_predicted"]], dtype=float)[filled]
        observed = np.asarray([np.nan if v is None else v for v in raw["observed_fraction"]], dtype=float)[filled]
        colour = COLOURS[index % len(COLOURS)]
        ece = raw.get("ece")
        text = f"{name} (ECE {ece:.3f})" if ece is not None and ece == ece else name
        ax.plot(predicted, observed, color=colour, linewidth=1.2)
        ax.scatter(predicted, observed, s=12 + 140 * counts[filled] / counts.sum(), color=colour, zorder=3, label=text)
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.04, 1.04)
    _style(ax, f"Calibration across cohorts — {label}", "predicted probability", "observed fraction positive")
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    return figure_png(fig)
