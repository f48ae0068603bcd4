"""`evaluate_run`: score a trained run on one of its splits and write `metrics.json` and `predictions.csv`.

The data are rebuilt from the run's saved configuration and checked against the saved split (`RunDir.rebuild_data`),
so a changed labels file cannot silently change what "test" means. The decision threshold is the one stored in the
model (chosen on the validation split during training) unless one is given explicitly — never chosen on test.

A run trained on encrypted data is evaluated with its key (`key=`, or the run's data.key_file / data.key_env): the
data, the split and an encrypted model are decrypted in memory, and the per-image predictions are written
encrypted like the split (`RunDir.write_table`), because they list patients and their labels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from radcnn.data.prepare import PreparedData
from radcnn.data.splits import EXTERNAL
from radcnn.errors import DataError
from radcnn.evaluation.auc import class_index, multiclass_auc, one_hot
from radcnn.models.inference import predict_probabilities
from radcnn.reporting.cohorts import DATASET, HELD_OUT_SITE, score_cohort
from radcnn.reporting.operating import cohort_extras, validation_reference
from radcnn.reporting.scoring import ci_method, score_label, strict_json
from radcnn.runs import RunDir, metrics_name, predictions_name

__all__ = ["EvaluationResult", "ci_method", "evaluate_run", "headline", "score_label"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationResult:
    metrics_path: Path
    predictions_path: Path
    metrics: dict


def evaluate_run(
    run_dir: str | Path | RunDir,
    *,
    split: str = "test",
    threshold: float | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    data: PreparedData | None = None,
    key=None,
) -> EvaluationResult:
    run = run_dir if isinstance(run_dir, RunDir) else RunDir.open(run_dir, key=key)
    if data is None:
        data = run.rebuild_data()
    if split not in data.splits:
        raise DataError(f"unknown split {split!r}; valid: {', '.join(data.splits)}")
    part = data.splits[split]
    if len(part) == 0:
        raise DataError(f"the {split} split of {run.path} is empty")
    model, spec = run.load_model()
    probs = predict_probabilities(model, part.images, task=spec.task, tta=spec.tta)
    groups = part.table["patient_id"].astype(str).to_numpy()
    labels = part.labels
    if spec.task == "multiclass":
        # One-vs-rest per class, so every binary metric and interval applies; plus arg-max accuracy below.
        labels = one_hot(class_index(part.labels), spec.num_outputs)

    # Operating points and the calibration map come from val, so they are not scored on val itself.
    references = validation_reference(run, data, model, spec) if split != "val" else {}
    cuts = [float(threshold) if threshold is not None else float(t) for t in spec.thresholds]
    source = "given" if threshold is not None else spec.threshold_method
    per_label: dict[str, dict] = {}
    predictions = part.table[["path", "patient_id"]].copy()
    for j, name in enumerate(spec.label_names):
        cut = cuts[j]
        y, p = labels[:, j], probs[:, j]
        per_label[name] = score_label(y, p, groups, cut, source, n_boot=n_boot, seed=seed)
        if references:
            per_label[name].update(cohort_extras(y, p, references.get(name), threshold=cut, source=source))
        predictions[f"{name}_true"] = y
        predictions[f"{name}_probability"] = p
        predictions[f"{name}_predicted"] = (p >= cut).astype(int)

    metrics = {
        "run": str(run.path),
        "split": split,
        "model": spec.architecture,
        "input_size": list(spec.input_size),
        "n_images": len(part),
        "n_patients": int(pd.Series(groups).nunique()),
        "ci_method": ci_method(n_boot, seed),
        "labels": per_label,
    }
    if spec.task == "multiclass":
        truth = class_index(part.labels)
        known = ~np.isnan(truth)
        predicted = probs.argmax(axis=1)
        metrics["multiclass"] = {
            "accuracy_argmax": float((predicted[known] == truth[known]).mean()) if known.any() else None,
            "macro_ovr_roc_auc": float(multiclass_auc(part.labels, probs)),
        }
        predictions["predicted_class"] = [spec.label_names[k] for k in predicted]
    if split == "test":
        metrics["external"] = _external_section(run, data, model, spec, references, cuts, n_boot=n_boot, seed=seed)
        if not metrics["external"]:
            del metrics["external"]
    metrics_path = run.write_json(metrics_name(split), strict_json(metrics))
    predictions_path = run.write_table(predictions_name(split), predictions)
    return EvaluationResult(metrics_path, predictions_path, metrics)


def _external_section(run: RunDir, data: PreparedData, model, spec, references, cuts, *, n_boot, seed) -> dict:
    """The held-out site scored afresh, plus the `--external` datasets scored earlier (kept as they were)."""
    earlier = (run.metrics("test") or {}).get("external", {})
    section = {name: entry for name, entry in earlier.items() if entry.get("kind") == DATASET}
    part = data.splits.get(EXTERNAL)
    if part is not None and len(part):
        site = run.config().data.hold_out_site
        name = f"{site} ({HELD_OUT_SITE})"
        entry, predictions = score_cohort(
            name=name,
            kind=HELD_OUT_SITE,
            source=f"images of site {site} in {run.config().data.source}, held out of training and validation",
            model=model,
            spec=spec,
            images=part.images,
            labels=part.labels,
            table=part.table,
            references=references,
            n_boot=n_boot,
            seed=seed,
            thresholds=cuts,
        )
        run.write_table(entry["predictions"], predictions)
        section = {name: entry, **section}
    return section


HEADLINE = ("accuracy", "sensitivity", "specificity", "precision", "f1", "roc_auc")


def headline(metrics: dict) -> dict[str, float]:
    """The first label's headline numbers (the seed's accuracy and recall plus the rest)."""
    first = next(iter(metrics["labels"].values()))
    return {k: first["metrics"][k] for k in HEADLINE}
