"""`compare_runs`: are two trained runs different on the same test images? (ROC AUC, DeLong and paired bootstrap)

A comparison only means something when both models scored the very same images with the same labels, so the
runs' prediction tables are first checked to hold identical rows (same image paths, same labels); rows are
matched by path, so their order does not matter. For each label both runs predict, two tests of the AUC
difference (run A − run B) are reported:

* DeLong's test (every image an independent case) — the usual choice with one image per patient;
* a paired bootstrap that resamples **patients** — right when patients contribute several images, which
  makes DeLong's p-value too small.

The decision-threshold metrics of each run (at its own validation-chosen threshold) are listed beside them for
context but not tested: thresholds differ between runs, so their sensitivities are not paired comparisons.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from radcnn.errors import DataError
from radcnn.evaluation.compare import delong_test, paired_bootstrap_auc_difference
from radcnn.io import write_json_atomic
from radcnn.reporting.evaluate_run import evaluate_run
from radcnn.reporting.report_data import json_safe
from radcnn.runs import RunDir, predictions_name

log = logging.getLogger(__name__)

_CONTEXT_METRICS = ("roc_auc", "sensitivity", "specificity", "accuracy")


@dataclass(frozen=True)
class ComparisonResult:
    out_path: Path | None
    comparison: dict = field(repr=False, compare=False)  # the content of comparison.json


def _predictions(run: RunDir, split: str, n_boot: int, seed: int) -> tuple[dict, pd.DataFrame]:
    metrics, table = run.metrics(split), run.predictions(split)
    if metrics is None or table is None:
        log.info("%s: no %s; evaluating the %s split first", run.path, predictions_name(split), split)
        metrics = evaluate_run(run, split=split, n_boot=n_boot, seed=seed).metrics
        table = run.predictions(split)
    if table["path"].duplicated().any():
        raise DataError(f"{run.path / predictions_name(split)}: the same image appears twice; re-run the evaluation")
    return metrics, table


def _check_same_rows(a: pd.DataFrame, b: pd.DataFrame, run_a: Path, run_b: Path, split: str) -> pd.DataFrame:
    """Rows of b in the order of a, after checking both hold exactly the same image paths."""
    only_a = sorted(set(a["path"]) - set(b["path"]))
    only_b = sorted(set(b["path"]) - set(a["path"]))
    if only_a or only_b:
        example = (only_a or only_b)[0]
        raise DataError(
            f"the {split} splits of {run_a} ({len(a)} images) and {run_b} ({len(b)} images) differ: "
            f"{len(only_a)} image(s) only in the first, {len(only_b)} only in the second (e.g. {example}). "
            "Compare runs trained on the same data with the same split seed and fractions."
        )
    return b.set_index("path").loc[a["path"]].reset_index()


def compare_runs(
    run_a: str | Path,
    run_b: str | Path,
    *,
    split: str = "test",
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    out: str | Path | None = None,
) -> ComparisonResult:
    """Compare the ROC AUCs of two runs on the same ``split`` (see the module docstring).

    Runs that lack the split's predictions are evaluated first. Writes ``comparison.json`` to ``out`` when
    given. Raises `DataError` when the runs scored different images, disagree on a label, or share no label.
    """
    run_a, run_b = RunDir.open(run_a), RunDir.open(run_b)
    metrics_a, table_a = _predictions(run_a, split, n_boot, seed)
    metrics_b, table_b = _predictions(run_b, split, n_boot, seed)
    run_a, run_b = run_a.path, run_b.path
    table_b = _check_same_rows(table_a, table_b, run_a, run_b, split)
    labels = [name for name in metrics_a["labels"] if name in metrics_b["labels"]]
    if not labels:
        raise DataError(
            f"{run_a} predicts {list(metrics_a['labels'])} and {run_b} predicts {list(metrics_b['labels'])}: "
            "no label in common to compare"
        )
    groups = table_a["patient_id"].astype(str).to_numpy()
    per_label = {}
    for name in labels:
        y = table_a[f"{name}_true"].to_numpy(dtype=np.float64)
        y_b = table_b[f"{name}_true"].to_numpy(dtype=np.float64)
        if not np.array_equal(y, y_b, equal_nan=True):
            row = int(np.flatnonzero(~((y == y_b) | (np.isnan(y) & np.isnan(y_b))))[0])
            raise DataError(
                f"label {name!r} differs between the runs for {table_a.at[row, 'path']} "
                f"({y[row]} vs {y_b[row]}): the runs were trained on different labels"
            )
        p_a = table_a[f"{name}_probability"].to_numpy(dtype=np.float64)
        p_b = table_b[f"{name}_probability"].to_numpy(dtype=np.float64)
        delong = delong_test(y, p_a, p_b, alpha=alpha)
        boot = paired_bootstrap_auc_difference(y, p_a, p_b, groups, n_boot=n_boot, alpha=alpha, seed=seed)
        per_label[name] = {
            "delong": delong.to_dict(),
            "paired_bootstrap": boot.to_dict(),
            "run_a": _context(metrics_a["labels"][name]),
            "run_b": _context(metrics_b["labels"][name]),
        }
    n_patients = int(pd.Series(groups).nunique())
    comparison = {
        "generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "split": split,
        "run_a": {"path": str(run_a), "model": metrics_a.get("model"), "input_size": metrics_a.get("input_size")},
        "run_b": {"path": str(run_b), "model": metrics_b.get("model"), "input_size": metrics_b.get("input_size")},
        "same_rows": {"checked": True, "n_images": len(table_a), "n_patients": n_patients},
        "difference": "run_a - run_b",
        "alpha": alpha,
        "n_boot": n_boot,
        "seed": seed,
        "labels": per_label,
        "note": (
            "DeLong treats each image as an independent case; with several images per patient prefer the "
            "paired patient bootstrap."
            if n_patients < len(table_a)
            else "One image per patient: DeLong and the paired bootstrap answer the same question."
        ),
    }
    comparison = json_safe(comparison)
    out_path = write_json_atomic(out, comparison) if out is not None else None
    return ComparisonResult(out_path, comparison)


def _context(entry: dict) -> dict:
    """One run's own operating point, for context beside the paired AUC tests."""
    out = {"threshold": entry["threshold"], "threshold_source": entry["threshold_source"]}
    for key in _CONTEXT_METRICS:
        out[key] = entry["metrics"].get(key)
        ci = entry.get("ci95", {}).get(key)
        if ci:
            out[f"{key}_ci95"] = [ci.get("low"), ci.get("high")]
    return out
