"""`fit`: train a registered model on a configured data source and leave a complete run directory behind.

The run directory and its files belong to `radcnn.runs` (see its docstring for the layout): `fit` stages the run in
``.<name>.partial``, trains into it and commits it when complete. `resume=True` continues an interrupted run from
its last epoch checkpoint with the configuration recorded in the run; `changes` may only extend ``train.epochs``
(recorded in config.yaml), any other value that differs from the recorded one is refused with its name.

Ctrl-C (SIGINT) during training stops after the current batch: the last finished epoch stays in the partial
folder, and the `Interrupted` error says so and how to resume (the CLI exits with 130).
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from radcnn.config import RunConfig
from radcnn.data.datamodule import RadiographDataModule
from radcnn.data.layouts.common import write_skipped_csv
from radcnn.data.prepare import PreparedData, data_key, prepare_data
from radcnn.data.splits import split_summary
from radcnn.errors import ConfigError, Interrupted
from radcnn.models.checkpoint import load_model, save_model
from radcnn.models.inference import predict_probabilities
from radcnn.models.registry import check_model_name, create_model
from radcnn.models.spec import ModelSpec
from radcnn.runs import (
    BEST_MODEL,
    CHECKPOINT,
    DATA_SUMMARY,
    METRICS_LOG,
    SKIPPED,
    SPLIT,
    TRANSFER_REPORT,
    RunDir,
    check_destination,
    partial_dir,
)
from radcnn.runs import start_run as stage_run
from radcnn.training import dp_fit
from radcnn.training.precision import resolve_precision
from radcnn.training.trainer import build_module, build_trainer

log = logging.getLogger(__name__)

# What a resumed run may change: more epochs extend training; everything else would make the run a different one.
RESUMABLE_CHANGES = frozenset({"train.epochs"})


@dataclass(frozen=True)
class FitResult:
    run_dir: Path
    best_epoch: int
    best_val_auc: float | None
    spec: ModelSpec
    precision: str
    epochs_run: int
    n_skipped: int = 0


def fit(
    config: RunConfig | None,
    run_dir: str | Path,
    *,
    overwrite: bool = False,
    resume: bool = False,
    changes: dict[str, Any] | None = None,
    change_names: dict[str, str] | None = None,
    data: PreparedData | None = None,
    cache_progress: Callable[[int, int], None] | None = None,
) -> FitResult:
    """Train into `run_dir`. A fresh run needs `config` (`changes` are applied to it); a resumed run takes its own
    (`config` must be None) with `changes` ({"train.epochs": 20}) applied where allowed. `change_names` names each
    change the way the caller's user wrote it ({"train.epochs": "--epochs"}) for error messages."""
    run_dir = Path(run_dir)
    if resume:  # refuse a changed configuration before the interrupted run is touched
        check_destination(run_dir, resume=True)
        recorded = RunDir(partial_dir(run_dir)).config()
        config = resumed_config(recorded, config, changes or {}, names=change_names)
    elif config is None:
        raise ConfigError("fit needs a RunConfig for a new run")
    elif changes:
        config = apply_changes(config, changes)
    check_model_name(config.model.name)
    dp_fit.check_dp_config(config, resume=resume)
    staging = stage_run(run_dir, overwrite=overwrite, resume=resume)
    run = staging.run
    try:
        if data is None:
            data = prepare_data(config.data, seed=config.train.seed, progress=cache_progress)
        run.write_config(config)
        result = _train_into(config, data, run, resume=resume)
    except (KeyboardInterrupt, _SigInt) as exc:
        kept = staging.discard_unless_resumable()
        raise Interrupted(_interrupt_message(run, run_dir, kept)) from exc
    except BaseException:
        staging.discard_unless_resumable()
        raise
    staging.commit()
    return replace(result, run_dir=run_dir)


def apply_changes(config: Any, changes: dict[str, Any]) -> Any:
    """`config` with {"section.field": value} applied (values already typed); "train.dp.epsilon" reaches into a
    nested section."""
    sections: dict[str, dict[str, Any]] = {}
    for dotted, value in changes.items():
        section, _, name = dotted.partition(".")
        sections.setdefault(section, {})[name] = value
    updated = {}
    for section, values in sections.items():
        current = getattr(config, section)
        nested = {k: v for k, v in values.items() if "." in k}  # "dp.epsilon": a key of a nested section
        values = {k: v for k, v in values.items() if "." not in k}
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(current)})
        if unknown:
            raise ConfigError(f"unknown configuration key(s) {', '.join(f'{section}.{u}' for u in unknown)}")
        current = replace(current, **values)
        if nested:
            current = apply_changes(current, nested)
        updated[section] = current
    return replace(config, **updated)


def _recorded_value(config: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        config = getattr(config, part)
    return config


def resumed_config(
    saved: RunConfig, given: RunConfig | None, changes: dict[str, Any], *, names: dict[str, str] | None = None
) -> RunConfig:
    """The recorded configuration with the allowed `changes`; a differing value of any other key is refused."""
    if given is not None and given != saved:
        raise ConfigError("a resumed run takes its configuration from the run; do not pass a config with --resume")
    names = names or {}
    allowed = {}
    for dotted, value in changes.items():
        recorded = _recorded_value(saved, dotted)
        if value == recorded:
            continue
        shown = f"{names[dotted]} {value}" if dotted in names else f"{dotted} = {value!r}"
        if dotted not in RESUMABLE_CHANGES:
            extendable = ", ".join(names.get(k, k) for k in sorted(RESUMABLE_CHANGES))
            raise ConfigError(
                f"cannot resume with {shown}: the run was started with {dotted} = {recorded!r}, and a resumed run keeps "
                f"its recorded configuration (only {extendable} may change, to extend training)"
            )
        if dotted == "train.epochs" and value < saved.train.epochs:
            raise ConfigError(f"cannot resume with {shown}: the run plans {saved.train.epochs} epochs already")
        allowed[dotted] = value
    if allowed:
        log.info("resuming with %s (recorded in config.yaml)", ", ".join(f"{k} = {v}" for k, v in allowed.items()))
    return apply_changes(saved, allowed) if allowed else saved


def resolve_task(requested: str, labels: np.ndarray, label_names: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """binary/multi-label (one sigmoid per column) or multi-class (one softmax) and the output names.

    Multi-class labels are one column of class indices 0..K-1 (outputs "name=k") or one-hot columns, one per class
    (outputs named after the columns). "auto" picks multi-class for an index column with values above 1, and for
    three or more columns of which every known row has exactly one 1.
    """
    known = labels[~np.isnan(labels)]
    if labels.shape[1] > 1:
        rows = labels[~np.isnan(labels).any(axis=1)]
        exclusive = len(rows) > 0 and bool(np.all(rows.sum(axis=1) == 1)) and np.isin(rows, (0, 1)).all()
        if requested == "multiclass" or (requested == "auto" and exclusive and labels.shape[1] >= 3):
            if not exclusive:
                raise ConfigError("train.task multiclass needs one-hot label columns (exactly one 1 per image)")
            return "multiclass", label_names
        return "binary", label_names
    indices = known.size > 0 and bool(np.all(known == np.round(known))) and known.min() >= 0
    if requested == "binary" or (requested == "auto" and not (indices and known.max() > 1)):
        return "binary", label_names
    if not indices:
        raise ConfigError("train.task multiclass needs one label column of class indices 0..K-1 or one-hot columns")
    return "multiclass", tuple(f"{label_names[0]}={k}" for k in range(int(known.max()) + 1))


def _initial_model(config: RunConfig, spec: ModelSpec, run: RunDir) -> torch.nn.Module:
    model = create_model(config.model.name, num_outputs=spec.num_outputs, input_size=tuple(config.data.image_size))
    if config.model.weights:
        from radcnn.models.transfer import initialise_from

        report = initialise_from(model, config.model.name, config.model.weights, source=config.model.weights_format)
        run.write_json(TRANSFER_REPORT, report.to_dict())
        log.info("initial weights: %s", report.summary())
    return model


def _train_into(config: RunConfig, data: PreparedData, run: RunDir, *, resume: bool) -> FitResult:
    task, output_names = resolve_task(config.train.task, data.splits["train"].labels, data.label_names)
    spec = ModelSpec(
        architecture=config.model.name,
        input_size=tuple(config.data.image_size),
        label_names=output_names,
        window=config.data.window,
        task=task,
        tta=config.train.tta,
    )
    if not resume:
        write_data_record(run, data, key=data_key(config.data))
    dp = config.train.dp.enabled
    # DP-SGD computes per-sample gradients in fp32 ("auto" resolves to 32 for it; explicit bf16 is refused)
    precision = resolve_precision("32" if dp else config.train.precision)
    checkpoint = run.file(CHECKPOINT) if resume else None
    earlier_log = _set_aside_metrics_log(run) if resume else None
    # Seed inside a forked RNG so that weight init and training are reproducible without changing the caller's
    # global random state (library code must not set global RNG state).
    with torch.random.fork_rng(devices=[]), _sigint_raises():
        torch.manual_seed(config.train.seed)
        model = _initial_model(config, spec, run)
        if getattr(model, "is_classic", False):  # HOG/LBP baselines: one scikit-learn fit, no epochs
            from radcnn.training.classic import train_classic

            if dp:
                raise ConfigError(
                    f"train.dp: DP-SGD trains neural networks; {config.model.name!r} is a classic (scikit-learn) "
                    "model — set train.dp.epsilon to 0 or choose a neural model (radcnn models)"
                )

            train_classic(model, spec, data, run, seed=config.train.seed)
            return _finish(run, data, config, precision="32", epochs_run=1)
        if dp:
            model, spec, changes = dp_fit.fix_for_dp(model, spec)
        module = build_module(config, model, data.splits["train"].labels, precision, task=task)
        datamodule = RadiographDataModule(
            data.splits,
            batch_size=config.train.batch_size,
            seed=config.train.seed,
            augment=config.train.augment,
            balanced=config.train.class_balance == "sampler",
        )
        extra = (dp_fit.attach_privacy(config, module, datamodule, run.path, changes),) if dp else ()
        trainer = build_trainer(config, run.path, spec, precision, extra_callbacks=extra)
        with warnings.catch_warnings():
            # Lightning suggests worker processes; batches come from an in-memory/memory-mapped array instead.
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            # DP-SGD: Opacus's hook on the first layer fires although the input images need no gradient (expected).
            warnings.filterwarnings("ignore", message=".*Full backward hook is firing.*")
            trainer.fit(module, datamodule=datamodule, ckpt_path=checkpoint)
        epochs_run = int(trainer.current_epoch)
    if earlier_log is not None:
        _merge_metrics_log(run, earlier_log)
    return _finish(run, data, config, precision=precision, epochs_run=epochs_run)


def _finish(run: RunDir, data: PreparedData, config: RunConfig, *, precision: str, epochs_run: int) -> FitResult:
    spec = _choose_thresholds(run, data, config)
    best = run.best()
    return FitResult(run.path, best["epoch"], best.get("val_auc"), spec, precision, epochs_run, len(data.skipped))


class _SigInt(BaseException):
    """Raised by the SIGINT handler inside training. Lightning turns a KeyboardInterrupt into `sys.exit(1)` with no
    message; any other exception it re-raises after its own clean-up, so `fit` can say what was saved."""


@contextmanager
def _sigint_raises() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread; the caller handles interrupts there
        return

    def handler(signum, frame):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the clean-up
        raise _SigInt()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupt_message(run: RunDir, run_dir: Path, kept: bool) -> str:
    if not kept:
        return f"training of {run_dir} stopped before its first epoch finished; nothing was kept"
    epochs = _logged_epochs(run)
    saved = f"epoch {epochs} is" if epochs else "the last finished epoch is"
    return f"{saved} saved in {run.path}; continue with: radcnn train --out {run_dir} --resume"


def _logged_epochs(run: RunDir) -> int | None:
    try:
        state = torch.load(run.file(CHECKPOINT), map_location="cpu", weights_only=False, mmap=True)
    except (OSError, RuntimeError, EOFError) as exc:
        log.debug("cannot read %s: %s", run.file(CHECKPOINT), exc)
        return None
    return int(state.get("epoch", -1)) + 1 or None


def _set_aside_metrics_log(run: RunDir) -> Path | None:
    """Lightning's CSV logger starts a fresh metrics.csv on resume; keep the epochs logged before the kill."""
    log_file = run.file(METRICS_LOG)
    if not log_file.is_file():
        return None
    kept = log_file.with_name("metrics.before_resume.csv")
    log_file.replace(kept)
    return kept


def _merge_metrics_log(run: RunDir, earlier: Path) -> None:
    import pandas as pd

    from radcnn.io import atomic_path

    log_file = run.file(METRICS_LOG)
    before = pd.read_csv(earlier)
    after = pd.read_csv(log_file) if log_file.is_file() else before.iloc[0:0]
    first_resumed = after["epoch"].min() if len(after) else np.inf
    merged = pd.concat([before[before["epoch"] < first_resumed], after], ignore_index=True)
    with atomic_path(log_file) as tmp:
        merged.to_csv(tmp, index=False)
    earlier.unlink()


def _choose_thresholds(run: RunDir, data: PreparedData, config: RunConfig) -> ModelSpec:
    """Pick each label's decision threshold on the validation split and store it in the saved model."""
    from radcnn.evaluation.thresholds import choose_threshold

    model, spec = load_model(run.file(BEST_MODEL))
    method = config.train.threshold_method
    if method == "fixed" or spec.task == "multiclass":  # multi-class decisions are the arg-max class
        return spec
    probs = predict_probabilities(model, data.splits["val"].images, task=spec.task, tta=spec.tta)
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
    save_model(model, spec, run.file(BEST_MODEL))
    return spec


def write_data_record(run: RunDir, data: PreparedData, *, key=None) -> None:
    """split.csv (encrypted with the data key when there is one), skipped.csv and data_summary.json."""
    table = data.manifest.table
    extra = [c for c in ("study", "site", "view", "sex", "age") if c in table.columns]
    columns = ["path", "patient_id", *extra, *data.label_names, "split"]
    # Patient ids, labels and metadata of an encrypted dataset: a plaintext copy would defeat encryption at rest.
    from radcnn.encryption.files import write_protected

    write_protected(run.file(SPLIT), table[columns].to_csv(index=False).encode("utf-8"), key)
    if data.skipped:
        write_skipped_csv(data.skipped, run.file(SKIPPED))
        log.warning("%d input(s) left out; see %s in the run", len(data.skipped), SKIPPED)
    summary = split_summary(data.manifest, data.partitions)
    checks = [c.to_dict() for c in data.checks]
    run.write_json(
        DATA_SUMMARY,
        {
            "source": str(data.manifest.source),
            "label_names": list(data.label_names),
            "splits": summary.to_dict(orient="records"),
            "official_split": data.official_split,
            "leakage_checks": checks,
            "leakage_check": "passed: " + "; ".join(f"{c['check']}: {c['result']}" for c in checks),
            "skipped": [{"item": what, "reason": why} for what, why in data.skipped],
        },
    )
