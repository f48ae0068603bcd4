"""External validation: scoring a trained run on a cohort nobody tuned on, next to its internal test result.

Two kinds of external cohort end up in the ``external`` section of a run's ``metrics.json`` (one entry each,
keyed by name) and in its report:

* **a held-out site** — a run trained with ``data.hold_out_site`` (``radcnn train --hold-out-site site_c``) keeps
  every image of that site out of train/val/test as the split ``"external"``; `radcnn evaluate` scores it
  automatically (`score_cohort`, called by `evaluate_run`);
* **an external dataset** — `radcnn.reporting.external.evaluate_external` (``radcnn evaluate RUN --external DATA``) reads any supported
  dataset or layout through the same data API as training (`radcnn.data.prepare.load_cohort`), preprocessed
  exactly as the run's own data, with labels mapped **by name** onto the run's labels.

Nothing is re-tuned on the cohort: the run's decision threshold is carried over unchanged, and the calibration
map and alternative thresholds are the ones fitted on the run's validation split (`radcnn.reporting.operating`).
A cohort holding one class has an undefined AUC (null, "undefined — one class"), never 0.5.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from radcnn.errors import DataError
from radcnn.evaluation.auc import class_index, one_hot
from radcnn.models.inference import predict_probabilities
from radcnn.reporting.operating import cohort_extras
from radcnn.reporting.scoring import ci_method, score_label
from radcnn.runs import predictions_name

HELD_OUT_SITE = "held-out site"
DATASET = "external dataset"


def cohort_slug(name: str) -> str:
    """A file-name-safe form of a cohort name (``predictions_external_<slug>.csv``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "cohort"


def map_labels(dataset_names, run_names, source) -> dict[str, str]:
    """{run label: dataset label} matched by name (exactly, else ignoring case and surrounding spaces)."""
    dataset_names = [str(n) for n in dataset_names]
    folded = {n.strip().lower(): n for n in dataset_names}
    mapping, missing = {}, []
    for name in run_names:
        if name in dataset_names:
            mapping[name] = name
        elif name.strip().lower() in folded:
            mapping[name] = folded[name.strip().lower()]
        else:
            missing.append(name)
    if missing:
        raise DataError(
            f"{source}: the external dataset lacks the run's label(s) {', '.join(missing)}; "
            f"it has: {', '.join(dataset_names) or '(no labels)'}; rename its label columns or classes to match"
        )
    return mapping


def score_cohort(
    *,
    name: str,
    kind: str,
    source: str,
    model,
    spec,
    images,
    labels: np.ndarray,
    table: pd.DataFrame,
    references: dict[str, dict],
    n_boot: int,
    seed: int,
    thresholds=None,
) -> tuple[dict, pd.DataFrame]:
    """One cohort's entry of the ``external`` section and its per-image predictions (labels in the run's order).

    ``thresholds`` (one per label) default to the run's own, chosen on its validation split."""
    probs = predict_probabilities(model, images, task=spec.task)
    if spec.task == "multiclass":
        labels = one_hot(class_index(labels), spec.num_outputs)
    groups = table["patient_id"].astype(str).to_numpy()
    predictions = table[["path", "patient_id"]].copy().reset_index(drop=True)
    per_label = {}
    for j, label in enumerate(spec.label_names):
        cut = float(spec.thresholds[j] if thresholds is None else thresholds[j])
        source_text = f"the run's threshold, carried over unchanged ({spec.threshold_method})"
        y, p = labels[:, j].astype(np.float64), probs[:, j].astype(np.float64)
        entry = score_label(y, p, groups, cut, source_text, n_boot=n_boot, seed=seed)
        entry.update(cohort_extras(y, p, references.get(label), threshold=cut, source=source_text))
        per_label[label] = entry
        predictions[f"{label}_true"] = y
        predictions[f"{label}_probability"] = p
        predictions[f"{label}_predicted"] = (p >= cut).astype(int)
    entry = {
        "name": name,
        "kind": kind,
        "source": source,
        "n_images": len(table),
        "n_patients": int(pd.Series(groups).nunique()),
        "ci_method": ci_method(n_boot, seed),
        "predictions": predictions_name(f"external_{cohort_slug(name)}"),
        "labels": per_label,
    }
    return entry, predictions
