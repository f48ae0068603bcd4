"""`fit`: train a registered model on a configured data source and leave a complete run directory behind.

Run directory layout::

    config.yaml              the resolved configuration
    split.csv                path, patient_id, metadata, labels, split — the patient-level split actually used
                             (split.csv.rcenc, encrypted with the data key, when the data are read with a key)
    data_summary.json        images/patients/positives per split, skipped files, leakage check result
    best_model.safetensors   best weights by validation AUC + ModelSpec (decision thresholds chosen on val)
    best.json                epoch and validation AUC of the best model
    transfer_report.json     which tensors were loaded from --weights (only with initial weights)
    skipped.csv              inputs left out under on_error=skip, with the reason (only when there were any)
    checkpoints/last.ckpt    Lightning checkpoint written atomically after every epoch (for --resume)
    logs/                    CSV (metrics.csv) and TensorBoard logs

The run is built in `.<name>.partial` beside its destination and renamed into place when it is complete, so a
failed or killed command never leaves a half-written run under the final name or touches an existing one; `resume`
continues a killed run from the partial folder's last checkpoint.
"""

from __future__ import annotations

import logging
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from radcnn.config import RunConfig, dump_config
from radcnn.data.datamodule import RadiographDataModule
from radcnn.data.encrypted import data_key
from radcnn.data.prepare import PreparedData, prepare_data
from radcnn.data.splits import split_summary
from radcnn.errors import ConfigError, RunDirectoryError
from radcnn.io import atomic_path, write_json_atomic, write_text_atomic
from radcnn.models.checkpoint import load_model, save_model
from radcnn.models.registry import check_model_name, create_model
from radcnn.models.spec import ModelSpec
from radcnn.training.callbacks import BEST_MODEL, read_best
from radcnn.training.precision import resolve_precision
from radcnn.training.predict_arrays import predict_probabilities
from radcnn.training.trainer import build_module, build_trainer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitResult:
    run_dir: Path
    best_epoch: int
    best_val_auc: float | None
    spec: ModelSpec
    precision: str
    epochs_run: int
    n_skipped: int = 0


def partial_dir(run_dir: Path) -> Path:
    return run_dir.with_name(f".{run_dir.name}.partial")


def prepare_run_dir(run_dir: Path, *, overwrite: bool = False, resume: bool = False) -> None:
    """Refuse to touch an existing run unless told to; check that a resume has something to resume."""
    run_dir = Path(run_dir)
    if resume and overwrite:
        raise RunDirectoryError("--resume and --overwrite exclude each other")
    partial = partial_dir(run_dir)
    if resume:
        if not (partial / "checkpoints" / "last.ckpt").is_file():
            done = " (that run is complete)" if (run_dir / BEST_MODEL).is_file() else ""
            raise RunDirectoryError(f"{run_dir}: nothing to resume — no interrupted run with a checkpoint{done}")
        return
    if run_dir.exists() and any(run_dir.iterdir()) and not overwrite:
        raise RunDirectoryError(f"{run_dir} already exists; pass --overwrite to replace it or choose another --out")
    if partial.exists() and not overwrite:
        raise RunDirectoryError(
            f"{run_dir}: an interrupted run exists in {partial}; pass --resume to continue it or --overwrite to restart"
        )


def fit(
    config: RunConfig,
    run_dir: str | Path,
    *,
    overwrite: bool = False,
    resume: bool = False,
    data: PreparedData | None = None,
    cache_progress: Callable[[int, int], None] | None = None,
) -> FitResult:
    run_dir = Path(run_dir)
    prepare_run_dir(run_dir, overwrite=overwrite, resume=resume)
    work = partial_dir(run_dir)
    if resume:
        config = _resumed_config(work, config)
    check_model_name(config.model.name)
    if data is None:
        data = prepare_data(config.data, seed=config.train.seed, progress=cache_progress)
    if not resume:
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
    try:
        result = _train_into(config, data, work, resume=resume)
    except BaseException:
        # A killed/failed fresh run is kept only if it has a checkpoint worth resuming; otherwise clean up.
        if not (work / "checkpoints" / "last.ckpt").is_file():
            shutil.rmtree(work, ignore_errors=True)
        raise
    _move_into_place(work, run_dir)
    return replace(result, run_dir=run_dir)


def _resumed_config(work: Path, given: RunConfig) -> RunConfig:
    from radcnn.config import load_config

    saved = load_config(work / "config.yaml")
    if saved.data != given.data or saved.model != given.model:
        log.warning("resuming with the data and model settings saved in %s, not the ones given", work)
    return replace(saved, train=replace(given.train, seed=saved.train.seed))


def _move_into_place(work: Path, run_dir: Path) -> None:
    if run_dir.exists():
        # Only reached with overwrite=True: drop the old run only once the new one is complete.
        trash = run_dir.with_name(f".{run_dir.name}.old")
        if trash.exists():
            shutil.rmtree(trash)
        run_dir.rename(trash)
        work.rename(run_dir)
        shutil.rmtree(trash)
    else:
        work.rename(run_dir)


def resolve_task(requested: str, labels: np.ndarray, label_names: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """binary/multi-label (one sigmoid per column) or multi-class (one column of class indices → softmax).

    "auto" picks multi-class when there is one label column whose known values are whole numbers above 1.
    """
    known = labels[~np.isnan(labels)]
    indices = labels.shape[1] == 1 and known.size > 0 and bool(np.all(known == np.round(known))) and known.min() >= 0
    if requested == "binary" or (requested == "auto" and not (indices and known.max() > 1)):
        return "binary", label_names
    if not indices:
        raise ConfigError(
            f"train.task multiclass needs one label column of class indices 0..K-1; got {labels.shape[1]} column(s)"
        )
    n_classes = int(known.max()) + 1
    return "multiclass", tuple(f"{label_names[0]}={k}" for k in range(n_classes))


def _initial_model(config: RunConfig, spec: ModelSpec, work: Path) -> torch.nn.Module:
    model = create_model(config.model.name, num_outputs=spec.num_outputs, input_size=tuple(config.data.image_size))
    if config.model.weights:
        from radcnn.models.transfer import initialise_from

        report = initialise_from(model, config.model.name, config.model.weights, source=config.model.weights_format)
        write_json_atomic(work / "transfer_report.json", report.to_dict())
        log.info("initial weights: %s", report.summary())
    return model


def _train_into(config: RunConfig, data: PreparedData, work: Path, *, resume: bool) -> FitResult:
    task, output_names = resolve_task(config.train.task, data.splits["train"].labels, data.label_names)
    spec = ModelSpec(
        architecture=config.model.name,
        input_size=tuple(config.data.image_size),
        label_names=output_names,
        window=config.data.window,
        task=task,
    )
    if not resume:
        write_text_atomic(work / "config.yaml", dump_config(config))
        _write_split(data, work, key=data_key(config.data))
    precision = resolve_precision(config.train.precision)
    checkpoint = work / "checkpoints" / "last.ckpt" if resume else None
    earlier_log = _set_aside_metrics_log(work) if resume else None
    # Seed inside a forked RNG so that weight init and training are reproducible without changing the caller's
    # global random state (library code must not set global RNG state).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.train.seed)
        model = _initial_model(config, spec, work)
        module = build_module(config, model, data.splits["train"].labels, precision, task=task)
        trainer = build_trainer(config, work, spec, precision)
        datamodule = RadiographDataModule(
            data.splits,
            batch_size=config.train.batch_size,
            seed=config.train.seed,
            augment=config.train.augment,
            balanced=config.train.class_balance == "sampler",
        )
        with warnings.catch_warnings():
            # Lightning suggests worker processes; batches come from an in-memory/memory-mapped array instead.
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            trainer.fit(module, datamodule=datamodule, ckpt_path=checkpoint)
        epochs_run = int(trainer.current_epoch)
    if earlier_log is not None:
        _merge_metrics_log(work, earlier_log)
    spec = _choose_thresholds(work, data, config)
    best = read_best(work)
    return FitResult(work, best["epoch"], best.get("val_auc"), spec, precision, epochs_run, len(data.skipped))


def _set_aside_metrics_log(work: Path) -> Path | None:
    """Lightning's CSV logger starts a fresh metrics.csv on resume; keep the epochs logged before the kill."""
    log_file = work / "logs" / "metrics.csv"
    if not log_file.is_file():
        return None
    kept = log_file.with_name("metrics.before_resume.csv")
    log_file.replace(kept)
    return kept


def _merge_metrics_log(work: Path, earlier: Path) -> None:
    import pandas as pd

    log_file = work / "logs" / "metrics.csv"
    before = pd.read_csv(earlier)
    after = pd.read_csv(log_file) if log_file.is_file() else before.iloc[0:0]
    first_resumed = after["epoch"].min() if len(after) else np.inf
    merged = pd.concat([before[before["epoch"] < first_resumed], after], ignore_index=True)
    with atomic_path(log_file) as tmp:
        merged.to_csv(tmp, index=False)
    earlier.unlink()


def _choose_thresholds(work: Path, data: PreparedData, config: RunConfig) -> ModelSpec:
    """Pick each label's decision threshold on the validation split and store it in the saved model."""
    from radcnn.evaluation.thresholds import choose_threshold

    model, spec = load_model(work / BEST_MODEL)
    method = config.train.threshold_method
    if method == "fixed" or spec.task == "multiclass":  # multi-class decisions are the arg-max class
        return spec
    probs = predict_probabilities(model, data.splits["val"].images)
    labels = data.splits["val"].labels
    thresholds = []
    for j in range(labels.shape[1]):
        known = ~np.isnan(labels[:, j])
        if len(np.unique(labels[known, j])) < 2:
            log.warning("label %s has one class in val; its threshold stays 0.5", data.label_names[j])
            thresholds.append(0.5)
            continue
        choice = choose_threshold(labels[known, j], probs[known, j], method, target=config.train.threshold_target)
        thresholds.append(float(choice.threshold))
    target = f" (target {config.train.threshold_target})" if config.train.threshold_target else ""
    spec = replace(spec, thresholds=tuple(thresholds), threshold_method=f"{method}{target} on val")
    save_model(model, spec, work / BEST_MODEL)
    return spec


def _write_split(data: PreparedData, work: Path, *, key=None) -> None:
    table = data.manifest.table
    extra = [c for c in ("study", "site", "view", "sex", "age") if c in table.columns]
    columns = ["path", "patient_id", *extra, *data.label_names, "split"]
    if key is None:
        with atomic_path(work / "split.csv") as tmp:
            table[columns].to_csv(tmp, index=False)
    else:
        # Patient ids, labels and metadata of an encrypted dataset: a plaintext copy would defeat encryption at rest.
        from radcnn.privacy.encryption import encrypt_bytes

        encrypt_bytes(table[columns].to_csv(index=False).encode("utf-8"), work / "split.csv.rcenc", key)
    if data.skipped:
        from radcnn.data.layouts.common import write_skipped_csv

        write_skipped_csv(data.skipped, work / "skipped.csv")
        log.warning("%d input(s) skipped (on_error=skip); see skipped.csv in the run", len(data.skipped))
    summary = split_summary(data.manifest, data.partitions)
    write_json_atomic(
        work / "data_summary.json",
        {
            "source": str(data.manifest.source),
            "label_names": list(data.label_names),
            "splits": summary.to_dict(orient="records"),
            "leakage_check": "passed: no patient in more than one split",
            "skipped": [{"item": what, "reason": why} for what, why in data.skipped],
        },
    )
