"""`evaluate_run`: score a trained run on one of its splits and write `metrics.json` and `predictions.csv`.

The data are rebuilt from the run's saved configuration and checked against the saved split, so a changed
labels file cannot silently change what "test" means. The decision threshold is the one stored in the model
(chosen on the validation split during training) unless one is given explicitly — never chosen on test.

A run trained on encrypted data (split.csv.rcenc) is evaluated with its key (`key=`, or the run's data.key_file /
data.key_env): the data, the split and an encrypted model are decrypted in memory, and predictions.csv is written
encrypted like the split (predictions.csv.rcenc) because it lists patients and their labels.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from radcnn.config import RunConfig, load_config
from radcnn.data.encrypted import ENCRYPTED_SUFFIX, data_key, read_plaintext, stored_file
from radcnn.data.prepare import PreparedData, prepare_data
from radcnn.errors import DataError, RunDirectoryError
from radcnn.evaluation.bootstrap import metrics_with_ci
from radcnn.evaluation.metrics import binary_metrics
from radcnn.io import atomic_path, write_json_atomic
from radcnn.models.checkpoint import load_model
from radcnn.training.callbacks import BEST_MODEL
from radcnn.training.module import multiclass_auc
from radcnn.training.predict_arrays import predict_probabilities

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationResult:
    metrics_path: Path
    predictions_path: Path
    metrics: dict


def load_run(run_dir: str | Path, *, encrypted_ok: bool = False) -> tuple[RunConfig, Path]:
    """The run's config; `encrypted_ok` for callers that read an encrypted split.csv.rcenc (with a key)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirectoryError(f"{run_dir}: no such run directory")
    if not (run_dir / "config.yaml").is_file():
        raise RunDirectoryError(f"{run_dir}: incomplete run, config.yaml is missing (did training finish?)")
    for needed in (BEST_MODEL, "split.csv"):  # either may be stored encrypted as <name>.rcenc
        if stored_file(run_dir / needed) is None:
            raise RunDirectoryError(f"{run_dir}: incomplete run, {needed} is missing (did training finish?)")
    if not encrypted_ok and not (run_dir / "split.csv").is_file():
        split = run_dir / f"split.csv{ENCRYPTED_SUFFIX}"
        raise RunDirectoryError(
            f"{run_dir}: the run's split is encrypted ({split.name}) and this command reads plaintext runs only; "
            f"`radcnn evaluate {run_dir} --key-file KEY` reads it, or decrypt it first: "
            f"radcnn decrypt {split} {run_dir / 'split.csv'} --key-file KEY"
        )
    return load_config(run_dir / "config.yaml"), run_dir


def rebuild_data(run_dir: Path, config: RunConfig, *, key=None) -> PreparedData:
    data = prepare_data(config.data, seed=config.train.seed, key=key)
    split_file = stored_file(run_dir / "split.csv")
    saved = pd.read_csv(io.BytesIO(read_plaintext(split_file, key)), dtype={"patient_id": str})
    now = data.manifest.table[["path", "split"]].reset_index(drop=True)
    if (
        len(saved) != len(now)
        or not (saved["path"].astype(str).to_numpy() == now["path"].to_numpy()).all()
        or not (saved["split"].to_numpy() == now["split"].to_numpy()).all()
    ):
        raise DataError(
            f"{config.data.source}: the data no longer match the split saved in {run_dir / 'split.csv'} "
            "(images were added, removed or relabelled since training); evaluate on the original data"
        )
    return data


def evaluate_run(
    run_dir: str | Path,
    *,
    split: str = "test",
    threshold: float | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    data: PreparedData | None = None,
    key=None,
) -> EvaluationResult:
    config, run_dir = load_run(run_dir, encrypted_ok=True)
    if key is None:
        key = data_key(config.data)
    if data is None:
        data = rebuild_data(run_dir, config, key=key)
    if split not in data.splits:
        raise DataError(f"unknown split {split!r}; valid: {', '.join(data.splits)}")
    part = data.splits[split]
    if len(part) == 0:
        raise DataError(f"the {split} split of {run_dir} is empty")
    model, spec = load_model(run_dir / BEST_MODEL, key=key)
    probs = predict_probabilities(model, part.images, task=spec.task)
    groups = part.table["patient_id"].astype(str).to_numpy()
    labels = part.labels
    if spec.task == "multiclass":
        # One-vs-rest per class, so every binary metric and interval applies; plus arg-max accuracy below.
        labels = one_hot(part.labels[:, 0], spec.num_outputs)

    per_label: dict[str, dict] = {}
    predictions = part.table[["path", "patient_id"]].copy()
    for j, name in enumerate(spec.label_names):
        cut = float(threshold) if threshold is not None else float(spec.thresholds[j])
        y, p = labels[:, j], probs[:, j]
        known = ~np.isnan(y)
        per_label[name] = {
            "threshold": cut,
            "threshold_source": "given" if threshold is not None else spec.threshold_method,
            "metrics": binary_metrics(y[known], p[known], threshold=cut),
            "ci95": metrics_with_ci(y[known], p[known], groups[known], cut, n_boot=n_boot, seed=seed)
            if n_boot > 0
            else {},
            "unknown_labels": int((~known).sum()),
        }
        predictions[f"{name}_true"] = y
        predictions[f"{name}_probability"] = p
        predictions[f"{name}_predicted"] = (p >= cut).astype(int)

    metrics = {
        "run": str(run_dir),
        "split": split,
        "model": spec.architecture,
        "input_size": list(spec.input_size),
        "n_images": len(part),
        "n_patients": int(pd.Series(groups).nunique()),
        "ci_method": f"percentile bootstrap over patients, {n_boot} resamples, seed {seed}",
        "labels": per_label,
    }
    if spec.task == "multiclass":
        known = ~np.isnan(part.labels[:, 0])
        predicted = probs.argmax(axis=1)
        metrics["multiclass"] = {
            "accuracy_argmax": float((predicted[known] == part.labels[known, 0]).mean()) if known.any() else None,
            "macro_ovr_roc_auc": float(multiclass_auc(part.labels, probs)),
        }
        predictions["predicted_class"] = [spec.label_names[k] for k in predicted]
    metrics_path = write_json_atomic(run_dir / f"metrics{'' if split == 'test' else '_' + split}.json", metrics)
    predictions_path = run_dir / f"predictions{'' if split == 'test' else '_' + split}.csv"
    if (run_dir / "split.csv").is_file():
        with atomic_path(predictions_path) as tmp:
            predictions.to_csv(tmp, index=False)
    else:  # patients and their labels in a run whose split is encrypted: stored encrypted the same way
        from radcnn.privacy.encryption import encrypt_bytes

        predictions_path = predictions_path.with_name(predictions_path.name + ENCRYPTED_SUFFIX)
        encrypt_bytes(predictions.to_csv(index=False).encode("utf-8"), predictions_path, key)
    return EvaluationResult(metrics_path, predictions_path, metrics)


def one_hot(index: np.ndarray, n_classes: int) -> np.ndarray:
    """Class indices (NaN = unknown) → (N, K) indicator columns, unknown rows all NaN."""
    out = np.zeros((len(index), n_classes), dtype=np.float32)
    known = ~np.isnan(index)
    out[np.flatnonzero(known), index[known].astype(int)] = 1.0
    out[~known] = np.nan
    return out


HEADLINE = ("accuracy", "sensitivity", "specificity", "precision", "f1", "roc_auc")


def headline(metrics: dict) -> dict[str, float]:
    """The first label's headline numbers (the seed's accuracy and recall plus the rest)."""
    first = next(iter(metrics["labels"].values()))
    return {k: first["metrics"][k] for k in HEADLINE}
