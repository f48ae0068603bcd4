"""`cross_validate`: stratified group k-fold by patient — K complete runs and metrics per fold and pooled.

Every patient is in exactly one fold (`radcnn.data.kfold.assign_folds`); round k trains on the other folds (val carved
from them at patient level, as always) and is evaluated on fold k. Each round is an ordinary run directory
(``OUT/fold_k``: its config records ``data.folds`` and ``data.fold``, so evaluate, report and explain work on it
unchanged). The pooled result scores the out-of-fold predictions of all rounds together — every image predicted by
the one model that never saw its patient — with patient-bootstrap intervals: ranking metrics (ROC AUC, PR AUC,
Brier, ECE) from the probabilities, decision metrics (accuracy, sensitivity, …) from each round's own decisions at
its own validation-chosen threshold. ``OUT/folds.json`` holds both, ``OUT/pooled_predictions.csv`` the rows.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from radcnn.config import RunConfig
from radcnn.errors import ConfigError
from radcnn.io import atomic_path, write_json_atomic
from radcnn.outputs import claim, mark
from radcnn.reporting.evaluate_run import ci_method, evaluate_run, score_label
from radcnn.reporting.report_data import json_safe
from radcnn.runs import RunDir
from radcnn.training.fit import fit

log = logging.getLogger(__name__)

FOLDS_JSON = "folds.json"
POOLED_PREDICTIONS = "pooled_predictions.csv"
RANKING = ("roc_auc", "pr_auc", "brier", "ece")


@dataclass(frozen=True)
class CrossValidationResult:
    out_dir: Path
    folds: list[dict]  # per round: fold, run, n_images, roc_auc of the first label
    pooled: dict  # metrics.json-shaped: split "pooled out-of-fold", labels → metrics with CIs
    summary_path: Path


def cross_validate(
    config: RunConfig,
    out_dir: str | Path,
    k: int,
    *,
    overwrite: bool = False,
    n_boot: int = 1000,
    progress: Callable[[int, int], None] | None = None,
) -> CrossValidationResult:
    """Train and evaluate `k` rounds into ``out_dir/fold_1..k`` and pool them (see the module docstring)."""
    if not isinstance(k, int) or k < 2:
        raise ConfigError(f"--folds needs at least 2 folds, got {k}")
    out_dir = Path(out_dir)
    claim(out_dir, "cross-validation", overwrite=overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    mark(out_dir, "cross-validation")
    rounds, tables = [], []
    for fold in range(1, k + 1):
        fold_config = dataclasses.replace(config, data=dataclasses.replace(config.data, folds=k, fold=fold))
        result = fit(fold_config, out_dir / f"fold_{fold}", overwrite=overwrite)
        evaluation = evaluate_run(result.run_dir, n_boot=n_boot, seed=config.train.seed)
        table = RunDir(result.run_dir).predictions()
        tables.append(table.assign(fold=fold))
        first = next(iter(evaluation.metrics["labels"].values()))
        rounds.append(
            {
                "fold": fold,
                "run": str(result.run_dir),
                "n_images": evaluation.metrics["n_images"],
                "roc_auc": first["metrics"]["roc_auc"],
                "labels": evaluation.metrics["labels"],
            }
        )
        if progress is not None:
            progress(fold, k)
    pooled_table = pd.concat(tables, ignore_index=True)
    pooled = _pooled_metrics(pooled_table, list(rounds[0]["labels"]), n_boot=n_boot, seed=config.train.seed)
    with atomic_path(out_dir / POOLED_PREDICTIONS) as tmp:
        pooled_table.to_csv(tmp, index=False)
    aucs = np.array([r["roc_auc"] for r in rounds], dtype=float)
    summary = {
        "k": k,
        "folds": [{key: r[key] for key in ("fold", "run", "n_images", "roc_auc")} for r in rounds],
        "roc_auc_mean": float(np.nanmean(aucs)),
        "roc_auc_sd": float(np.nanstd(aucs, ddof=1)),
        "pooled": pooled,
    }
    summary_path = write_json_atomic(out_dir / FOLDS_JSON, json_safe(summary))
    return CrossValidationResult(out_dir, summary["folds"], pooled, summary_path)


def _pooled_metrics(table: pd.DataFrame, labels: list[str], *, n_boot: int, seed: int) -> dict:
    groups = table["patient_id"].astype(str).to_numpy()
    per_label = {}
    for name in labels:
        y = table[f"{name}_true"].to_numpy(dtype=np.float64)
        by_probability = score_label(y, table[f"{name}_probability"], groups, 0.5, "", n_boot=n_boot, seed=seed)
        by_decision = score_label(y, table[f"{name}_predicted"], groups, 0.5, "", n_boot=n_boot, seed=seed)
        entry = by_decision
        entry["threshold_source"] = "each fold's own threshold, chosen on its validation split"
        entry["threshold"] = float("nan")
        for key in RANKING:
            entry["metrics"][key] = by_probability["metrics"][key]
            if key in by_probability["ci95"]:
                entry["ci95"][key] = by_probability["ci95"][key]
        per_label[name] = entry
    return {
        "split": "pooled out-of-fold",
        "n_images": len(table),
        "n_patients": int(pd.Series(groups).nunique()),
        "ci_method": ci_method(n_boot, seed),
        "labels": per_label,
    }
