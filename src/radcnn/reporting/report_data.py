"""Gathering what the report shows from a run directory, as plain JSON-ready data (no rendering here).

Each function reads one part of the run (``data_summary.json``, ``split.csv``, ``metrics.json``,
``predictions.csv``, ``logs/metrics.csv``) and returns dictionaries/lists; `report.py` turns them into
``report.json`` and, with the figures, into ``report.html``. Numbers come from the evaluation functions
(`subgroup_metrics`, the plots' curve helpers), never recomputed here.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from radcnn.errors import RunDirectoryError
from radcnn.evaluation.subgroups import DEFAULT_COLUMNS, subgroup_metrics
from radcnn.runs import METRICS_LOG, RunDir, predictions_name

log = logging.getLogger(__name__)

# The metrics table of the report, in reading order, with the names people use.
METRIC_ROWS = (
    ("roc_auc", "ROC AUC"),
    ("pr_auc", "PR AUC (average precision)"),
    ("accuracy", "Accuracy"),
    ("sensitivity", "Sensitivity (recall)"),
    ("specificity", "Specificity"),
    ("precision", "Precision (PPV)"),
    ("npv", "NPV"),
    ("f1", "F1"),
    ("balanced_accuracy", "Balanced accuracy"),
    ("brier", "Brier score"),
    ("ece", "Expected calibration error"),
)
METADATA_COLUMNS = ("study", "site", "view", "sex", "age")


def json_safe(value):
    """A copy of ``value`` that `json.dumps` writes as strict JSON: NaN/inf → null, numpy → Python."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirectoryError(f"{path}: missing (is this a complete run directory?)") from None
    except json.JSONDecodeError as exc:
        raise RunDirectoryError(f"{path}: not valid JSON ({exc})") from None


def read_predictions(run: RunDir, split: str, label_names) -> pd.DataFrame:
    """The split's predictions joined with the metadata columns of ``split.csv`` (sex, age, view, site ...)."""
    name = predictions_name(split)
    predictions = run.predictions(split)
    if predictions is None:
        raise RunDirectoryError(f"{run.path}: {name} is missing; run `radcnn evaluate {run.path}` first")
    needed = [f"{label}_{part}" for label in label_names for part in ("true", "probability")]
    missing = [c for c in ("path", "patient_id", *needed) if c not in predictions.columns]
    if missing:
        raise RunDirectoryError(f"{run.path / name}: missing column(s) {', '.join(missing)}; re-run the evaluation")
    table = run.split_table()
    extra = [c for c in METADATA_COLUMNS if c in table.columns]
    meta = table[["path", *extra]].drop_duplicates("path")
    merged = predictions.merge(meta, on="path", how="left", validate="one_to_one")
    return merged


def is_synthetic(summary: dict, config: dict) -> bool:
    """True when the data came from radcnn's phantom (so the model card must carry the synthetic-data caveat).

    Evidence, in order: ``"synthetic": true`` in ``data_summary.json``; a ``dataset.json`` beside the labels
    file whose ``"synthetic"`` is true; or a labels CSV whose header is exactly the one `radcnn.phantom.synth`
    writes (path, patient_id, study, site, ..., boxes, mask_path, study_date, lung_mask_path).
    """
    if summary.get("synthetic"):
        return True
    source = Path(str(summary.get("source") or config.get("data", {}).get("source", "")))
    card = source.parent / "dataset.json"
    if card.is_file():
        try:
            return bool(json.loads(card.read_text(encoding="utf-8")).get("synthetic"))
        except (json.JSONDecodeError, AttributeError):
            log.warning("%s: not a readable dataset card; not treating the data as synthetic", card)
    if source.suffix.lower() == ".csv" and source.is_file():
        from radcnn.phantom.synth import CSV_COLUMNS

        with source.open(encoding="utf-8", newline="") as handle:
            header = next(csv.reader(handle), [])
        return tuple(header) == tuple(CSV_COLUMNS)
    return False


def data_section(summary: dict, split_table: pd.DataFrame) -> dict:
    """Counts per split, class balance per label, patients, leakage check, skipped files, metadata present."""
    labels = list(summary["label_names"])
    splits = []
    for row in summary["splits"]:
        balance = []
        for label in labels:
            positives = row.get(f"{label}_positive")
            prevalence = positives / row["images"] if positives is not None and row["images"] else float("nan")
            balance.append({"label": label, "positives": positives, "prevalence": prevalence})
        splits.append({"split": row["split"], "images": row["images"], "patients": row["patients"], "balance": balance})
    leakage = str(summary.get("leakage_check", "not recorded"))
    images_are_patients = all(s["images"] == s["patients"] for s in splits if s["images"])
    return {
        "source": summary.get("source", ""),
        "label_names": labels,
        "splits": splits,
        "leakage_check": leakage,
        "leakage_passed": leakage.startswith("passed"),
        "skipped": list(summary.get("skipped", [])),
        "images_are_patients": images_are_patients,
        "metadata_columns": [c for c in METADATA_COLUMNS if c in split_table.columns],
        "sites": sorted(split_table["site"].dropna().astype(str).unique().tolist()) if "site" in split_table else [],
    }


def metric_rows(entry: dict) -> list[dict]:
    """The metrics table of one label: name, estimate, the 95% interval (None where not computed) and its method."""
    rows = []
    for key, title in METRIC_ROWS:
        ci = entry.get("ci95", {}).get(key) or {}
        rows.append(
            {
                "key": key,
                "name": title,
                "estimate": entry["metrics"].get(key),
                "low": ci.get("low"),
                "high": ci.get("high"),
                "method": ci.get("method"),
                # AUC with one class in the labels is undefined, never 0.5: the report says so in words
                "note": entry.get("auc_note") if key in ("roc_auc", "pr_auc") else None,
            }
        )
    return rows


def threshold_section(entry: dict, config: dict, val_entry: dict | None) -> dict:
    """How the decision threshold was chosen (on validation) and what it achieved there and on test."""
    train = config.get("train", {})
    out = {
        "value": entry["threshold"],
        "source": entry["threshold_source"],
        "method": train.get("threshold_method"),
        "target": train.get("threshold_target"),
        "chosen_on": "val" if "on val" in str(entry["threshold_source"]) else "given",
        "test": {k: entry["metrics"].get(k) for k in ("sensitivity", "specificity", "precision")},
        "val": None,
    }
    if val_entry is not None:
        m = val_entry["metrics"]
        out["val"] = {k: m.get(k) for k in ("n", "n_positive", "sensitivity", "specificity", "precision")}
    return out


def subgroup_rows(
    predictions: pd.DataFrame, label: str, threshold: float, *, n_boot: int, seed: int, min_size: int
) -> list[dict]:
    """`subgroup_metrics` over sex, age band, view and site (those present), with patient-bootstrap CIs
    (none when ``n_boot`` is 0)."""
    # Only the columns this run recorded (age gives age_band), so nothing is reported as "skipped" needlessly.
    present = [c for c in DEFAULT_COLUMNS if c in predictions.columns or (c == "age_band" and "age" in predictions)]
    table = subgroup_metrics(
        predictions[f"{label}_true"].to_numpy(dtype=np.float64),
        predictions[f"{label}_probability"].to_numpy(dtype=np.float64),
        predictions,
        columns=present,
        threshold=threshold,
        groups="patient_id" if n_boot > 0 else None,
        min_size=min_size,
        n_boot=max(n_boot, 1),
        seed=seed,
    )
    return table.to_dict(orient="records")


def training_section(run: RunDir) -> tuple[dict, pd.DataFrame | None]:
    """Best epoch and the per-epoch losses/AUC from ``logs/metrics.csv`` (None when the run has no CSV log)."""
    from radcnn.reporting.plots import epoch_table

    best = run.best()
    log_path = run.file(METRICS_LOG)
    if not log_path.is_file():
        log.info("%s: no training log; the report has no training curves", log_path)
        return {"best_epoch": best.get("epoch"), "best_val_auc": best.get("val_auc"), "epochs": []}, None
    epochs = epoch_table(log_path)
    return {
        "best_epoch": best.get("epoch"),
        "best_val_auc": best.get("val_auc"),
        "epochs": epochs.to_dict(orient="records"),
    }, epochs
