"""`fit`: train a registered model on a configured data source and leave a complete run directory behind.

Run directory layout::

    config.yaml              the resolved configuration
    split.csv                path, patient_id, labels, split — the patient-level split actually used
    data_summary.json        images/patients/positives per split, skipped files, leakage check result
    best_model.safetensors   best weights by validation AUC + ModelSpec (decision thresholds chosen on val)
    best.json                epoch and validation AUC of the best model
    checkpoints/last.ckpt    Lightning checkpoint of the last epoch
    logs/                    CSV (metrics.csv) and TensorBoard logs

The run is built in a temporary folder beside its destination and renamed into place at the end, so a failed or
interrupted command never leaves a half-written run under the final name or touches an existing one.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from radcnn.config import RunConfig, dump_config
from radcnn.data.datamodule import RadiographDataModule
from radcnn.data.prepare import PreparedData, prepare_data
from radcnn.data.splits import split_summary
from radcnn.errors import RunDirectoryError
from radcnn.io import write_json_atomic, write_text_atomic
from radcnn.models.checkpoint import load_model, save_model
from radcnn.models.registry import create_model
from radcnn.models.spec import ModelSpec
from radcnn.training.callbacks import BEST_MODEL, BestModelExport, read_best
from radcnn.training.precision import resolve_precision
from radcnn.training.predict_arrays import predict_probabilities

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitResult:
    run_dir: Path
    best_epoch: int
    best_val_auc: float | None
    spec: ModelSpec
    precision: str


def prepare_run_dir(run_dir: Path, overwrite: bool) -> None:
    if run_dir.exists() and any(run_dir.iterdir()) and not overwrite:
        raise RunDirectoryError(f"{run_dir} already exists; pass --overwrite to replace it or choose another --out")


def fit(
    config: RunConfig,
    run_dir: str | Path,
    *,
    overwrite: bool = False,
    data: PreparedData | None = None,
    cache_progress: Callable[[int, int], None] | None = None,
) -> FitResult:
    run_dir = Path(run_dir)
    prepare_run_dir(run_dir, overwrite)
    if data is None:
        data = prepare_data(config.data, seed=config.train.seed, progress=cache_progress)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.", suffix=".partial", dir=run_dir.parent))
    try:
        result = _train_into(config, data, work)
        _move_into_place(work, run_dir)
    finally:
        if work.exists():
            shutil.rmtree(work)
    return replace(result, run_dir=run_dir)


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


def _train_into(config: RunConfig, data: PreparedData, work: Path) -> FitResult:
    size = tuple(config.data.image_size)
    spec = ModelSpec(
        architecture=config.model.name,
        input_size=size,
        label_names=data.label_names,
        window=config.data.window,
        model_kwargs={},
    )
    write_text_atomic(work / "config.yaml", dump_config(config))
    _write_split(data, work)
    precision = resolve_precision(config.train.precision)
    # Seed inside a forked RNG so that weight init and training are reproducible without changing the caller's
    # global random state (library code must not set global RNG state).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.train.seed)
        model = create_model(config.model.name, num_outputs=len(data.label_names), input_size=size)
        module_cls = _module_class()
        module = module_cls(model, lr=config.train.lr, channels_last=precision.startswith("bf16"))
        export = BestModelExport(work, spec)
        trainer = L.Trainer(
            max_epochs=config.train.epochs,
            accelerator="cpu" if not torch.cuda.is_available() else "auto",
            devices=1,
            precision=precision,
            deterministic=config.train.deterministic,
            logger=[
                CSVLogger(work, name="logs", version=""),
                TensorBoardLogger(work, name="logs", version=""),
            ],
            callbacks=[export, ModelCheckpoint(dirpath=work / "checkpoints", save_last=True, save_top_k=0)],
            enable_progress_bar=config.train.progress_bar,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            log_every_n_steps=1,
        )
        datamodule = RadiographDataModule(data.splits, batch_size=config.train.batch_size, seed=config.train.seed)
        with warnings.catch_warnings():
            # Lightning suggests worker processes; batches come from an in-memory/memory-mapped array instead.
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            trainer.fit(module, datamodule=datamodule)
    spec = _choose_thresholds(work, data, config)
    best = read_best(work)
    return FitResult(work, best["epoch"], best.get("val_auc"), spec, precision)


def _module_class():
    from radcnn.training.module import ClassifierModule

    return ClassifierModule


def _choose_thresholds(work: Path, data: PreparedData, config: RunConfig) -> ModelSpec:
    """Pick each label's decision threshold on the validation split and store it in the saved model."""
    from radcnn.evaluation.thresholds import choose_threshold

    model, spec = load_model(work / BEST_MODEL)
    probs = predict_probabilities(model, data.splits["val"].images)
    labels = data.splits["val"].labels
    thresholds = []
    for j in range(labels.shape[1]):
        known = ~np.isnan(labels[:, j])
        if len(np.unique(labels[known, j])) < 2:
            thresholds.append(0.5)
            continue
        thresholds.append(
            float(choose_threshold(labels[known, j], probs[known, j], config.train.threshold_method).threshold)
        )
    spec = replace(spec, thresholds=tuple(thresholds), threshold_method=f"{config.train.threshold_method} on val")
    save_model(model, spec, work / BEST_MODEL)
    return spec


def _write_split(data: PreparedData, work: Path) -> None:
    table = data.manifest.table
    columns = ["path", "patient_id", *data.label_names, "split"]
    extra = [c for c in ("study", "site", "view", "sex", "age") if c in table.columns]
    from radcnn.io import atomic_path

    with atomic_path(work / "split.csv") as tmp:
        table[columns[:2] + extra + columns[2:]].to_csv(tmp, index=False)
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
