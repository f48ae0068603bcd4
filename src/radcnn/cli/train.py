"""`radcnn train`: fit a registered model on any supported dataset (a thin layer over `radcnn.training.fit`)."""

from __future__ import annotations

from pathlib import Path

import typer

from radcnn.cli.crypto import KEY_FILE, PASSPHRASE_ENV
from radcnn.cli.render import ProgressCallback, console, key_value_table
from radcnn.config import RunConfig, load_config

# CLI option → (config section, field). Options left unset keep the config file's (or the default) value.
OPTION_FIELDS = {
    "data": ("data", "source"),
    "size": ("data", "image_size"),
    "labels": ("data", "label_columns"),
    "on_error": ("data", "on_error"),
    "on_leakage": ("data", "on_leakage"),
    "hold_out_site": ("data", "hold_out_site"),
    "layout": ("data", "layout"),
    "layout_option": ("data", "layout_options"),
    "key_file": ("data", "key_file"),
    "passphrase_env": ("data", "key_env"),
    "model": ("model", "name"),
    "weights": ("model", "weights"),
    "weights_format": ("model", "weights_format"),
    "freeze_backbone": ("model", "freeze_backbone"),
    "backbone_lr_scale": ("model", "backbone_lr_scale"),
    "epochs": ("train", "epochs"),
    "batch_size": ("train", "batch_size"),
    "lr": ("train", "lr"),
    "seed": ("train", "seed"),
    "precision": ("train", "precision"),
    "augment": ("train", "augment"),
    "class_balance": ("train", "class_balance"),
    "lr_schedule": ("train", "lr_schedule"),
    "early_stopping": ("train", "early_stopping_patience"),
    "accumulate": ("train", "accumulate_grad_batches"),
    "devices": ("train", "devices"),
    "deterministic": ("train", "deterministic"),
    "threshold_method": ("train", "threshold_method"),
    "threshold_target": ("train", "threshold_target"),
    "dp_epsilon": ("train", "dp.epsilon"),
    "dp_delta": ("train", "dp.delta"),
    "dp_max_grad_norm": ("train", "dp.max_grad_norm"),
    "weight_averaging": ("train", "weight_averaging"),
    "model_selection": ("train", "model_selection"),
    "tta": ("train", "tta"),
}


def option_changes(options: dict) -> tuple[dict[str, object], dict[str, str]]:
    """The options the user gave, as {"section.field": typed value} and {"section.field": "--flag"}."""
    from radcnn.cli.data import parse_option

    changes, names = {}, {}
    for option, value in options.items():
        if value is None or option not in OPTION_FIELDS or value == []:
            continue
        section, field = OPTION_FIELDS[option]
        if option == "size":
            value = (value, value)
        elif option == "labels":
            value = tuple(s.strip() for s in value.split(",") if s.strip())
        elif option == "layout_option":
            value = dict(parse_option(text) for text in value)
        elif isinstance(value, Path):
            value = str(value)  # the path only: config.yaml never holds key material
        changes[f"{section}.{field}"] = value
        names[f"{section}.{field}"] = "--" + option.replace("_", "-")
    return changes, names


def build_config(config_file: Path | None, options: dict) -> RunConfig:
    """The configuration of a new run: the config file (or the defaults) with the given options applied."""
    from radcnn.training.fit import apply_changes

    config = load_config(config_file) if config_file else RunConfig()
    return apply_changes(config, option_changes(options)[0])


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        out: Path = typer.Option(..., "--out", "-o", help="Run directory to create (or to resume)."),
        data: str = typer.Option(None, "--data", "-d", help="Dataset: folder, labels CSV or MedMNIST .npz."),
        labels: str = typer.Option(None, help="Comma-separated labels to train on (default: all the data's)."),
        size: int = typer.Option(None, help="Model input side in pixels (default 128)."),
        layout: str = typer.Option(None, help="Dataset layout (default: detected; see `radcnn data layouts`)."),
        layout_option: list[str] = typer.Option([], "--option", help="Layout option KEY=VALUE (repeatable)."),
        model: str = typer.Option(None, help="Registered model name (see `radcnn models`)."),
        weights: str = typer.Option(None, help="Initial weights: radcnn .safetensors, torchvision or TorchXRayVision."),
        weights_format: str = typer.Option(None, help="auto | radcnn | torchvision | torchxrayvision"),
        freeze_backbone: bool = typer.Option(None, "--freeze-backbone/--train-backbone", help="Train the head only."),
        backbone_lr_scale: float = typer.Option(None, help="Backbone learning rate = lr × this (default 1)."),
        epochs: int = typer.Option(None, help="Epochs (default 10; with --resume: more epochs extend the run)."),
        batch_size: int = typer.Option(None, help="Batch size (default 32)."),
        lr: float = typer.Option(None, help="Adam learning rate (default 1e-3)."),
        seed: int = typer.Option(None, help="Seed for split, initialisation, shuffling and augmentation (default 0)."),
        precision: str = typer.Option(None, help="auto | 32 | bf16 (auto: bf16 on AMX/AVX-512-bf16 CPUs)."),
        augment: str = typer.Option(None, help="none | light | standard | strong | shift (training split only)."),
        weight_averaging: str = typer.Option(None, help="none | ema (exponential moving average of the weights)."),
        model_selection: str = typer.Option(None, help="best_val (highest val AUC) | last (fixed schedule)."),
        tta: str = typer.Option(None, help="Test-time augmentation stored in the model: none | flip | flip_shift."),
        class_balance: str = typer.Option(None, help="none | pos_weight | sampler."),
        lr_schedule: str = typer.Option(None, help="none | cosine | plateau."),
        early_stopping: int = typer.Option(None, help="Stop after this many epochs without val AUC gain (0 = off)."),
        accumulate: int = typer.Option(None, help="Gradient accumulation steps."),
        devices: int = typer.Option(None, help="Data-parallel processes (DDP; gloo on CPU)."),
        deterministic: bool = typer.Option(None, "--deterministic/--fast", help="Deterministic algorithms."),
        threshold_method: str = typer.Option(None, help="youden | sensitivity | specificity | f1 | fixed (on val)."),
        threshold_target: float = typer.Option(None, help="Target for sensitivity/specificity, e.g. 0.95."),
        dp_epsilon: float = typer.Option(None, help="Differential privacy: DP-SGD to this target ε (0 = off)."),
        dp_delta: float = typer.Option(None, help="DP target δ (default 1/N of the training images)."),
        dp_max_grad_norm: float = typer.Option(None, help="DP per-sample gradient clipping norm (default 1)."),
        on_error: str = typer.Option(None, help="fail | skip unreadable images."),
        on_leakage: str = typer.Option(
            None,
            help="Identical images in two splits: auto | fail | drop (drop: keep the test copy; auto: drop for official splits).",
        ),
        hold_out_site: str = typer.Option(
            None, help="Site-held-out validation: train on the other sites; this site becomes the external cohort."
        ),
        folds: int = typer.Option(None, help="K-fold cross-validation by patient: K runs in OUT/fold_1..K, pooled."),
        config: Path = typer.Option(None, "--config", "-c", help="YAML/TOML config; options override it."),
        overwrite: bool = typer.Option(False, help="Replace an existing run directory."),
        resume: bool = typer.Option(False, help="Continue an interrupted run from its last checkpoint."),
        key_file: Path = KEY_FILE,
        passphrase_env: str = PASSPHRASE_ENV,
    ) -> None:
        """Train a model; writes the best model, split, logs and resolved config into OUT.

        --resume continues an interrupted run with the configuration recorded in it (--epochs may extend it; any
        other option that differs is refused). With --key-file or --passphrase-env, an encrypted dataset
        (`radcnn encrypt`) is read in memory only and the run's per-patient files are written encrypted.

        Example: radcnn train --data runs/demo/data --out runs/seed --epochs 10 --size 128

        Example (site shift): radcnn train --data runs/demo/data --out runs/site --hold-out-site site_c
        """
        from radcnn.cli.app import quiet_lightning
        from radcnn.errors import ConfigError
        from radcnn.runs import RunDir, check_destination
        from radcnn.training.fit import fit

        quiet_lightning()
        options = dict(locals())
        changes, names = option_changes(options)
        if folds is not None:
            _train_folds(out, build_config(config, options), folds, overwrite=overwrite, resume=resume)
            return
        if resume:
            if config is not None:
                raise ConfigError("--config cannot be combined with --resume: a resumed run keeps its configuration")
            run_config = None
        else:
            run_config = build_config(config, options)
            if not run_config.data.source:
                raise ConfigError("give the dataset with --data (or data.source in --config)")
        check_destination(out, overwrite=overwrite, resume=resume)  # fail before decoding anything
        with ProgressCallback("decoding images") as progress:
            result = fit(
                run_config,
                out,
                overwrite=overwrite,
                resume=resume,
                changes=changes if resume else None,
                change_names=names,
                cache_progress=progress,
            )
        console.print(
            key_value_table(
                "training finished",
                {
                    "run directory": str(result.run_dir),
                    "model": result.spec.architecture,
                    "labels": ", ".join(result.spec.label_names),
                    "precision": result.precision,
                    "epochs run": result.epochs_run,
                    "best epoch": result.best_epoch,
                    "best validation AUC": result.best_val_auc,
                    "thresholds": ", ".join(f"{t:.3f}" for t in result.spec.thresholds)
                    + f" ({result.spec.threshold_method})",
                },
            )
        )
        privacy = RunDir(result.run_dir).privacy()
        if privacy:
            console.print(
                f"differential privacy: ε = {privacy['epsilon_spent']:.3f} spent at δ = {privacy['delta']:.3g} "
                f"(target {privacy['target_epsilon']}, noise multiplier {privacy['noise_multiplier']:.3f}, "
                f"clip {privacy['max_grad_norm']})"
            )
            for change in privacy["model_changes"]:
                console.print(f"  model change for DP-SGD: {change}")
        if result.n_skipped:
            console.print(f"[yellow]skipped {result.n_skipped} input(s)[/]: see {result.run_dir / 'skipped.csv'}")
        console.print(f"next: radcnn evaluate {result.run_dir}")


def _train_folds(out: Path, config: RunConfig, k: int, *, overwrite: bool, resume: bool) -> None:
    from radcnn.cli.render import metrics_table
    from radcnn.cross_validation import cross_validate
    from radcnn.errors import ConfigError

    if resume:
        raise ConfigError("--folds cannot be combined with --resume; resume one fold with --out OUT/fold_N --resume")
    if not config.data.source:
        raise ConfigError("give the dataset with --data (or data.source in --config)")
    with ProgressCallback("cross-validation folds") as progress:
        result = cross_validate(config, out, k, overwrite=overwrite, progress=progress)
    for fold in result.folds:
        console.print(f"fold {fold['fold']}: {fold['run']} — test AUC {fold['roc_auc']:.4f}")
    console.print(metrics_table(result.pooled))
    console.print(f"pooled out-of-fold metrics: {result.summary_path}")
