"""`radcnn train`: fit a registered model on a labels CSV or MedMNIST .npz."""

from __future__ import annotations

from pathlib import Path

import typer

from radcnn.cli.crypto import KEY_FILE, PASSPHRASE_ENV
from radcnn.cli.render import ProgressCallback, console, key_value_table
from radcnn.config import RunConfig, load_config, replace

# CLI option → (config section, field). Options left unset keep the config file's (or the default) value.
_OPTION_FIELDS = {
    "data": ("data", "source"),
    "size": ("data", "image_size"),
    "labels": ("data", "label_columns"),
    "on_error": ("data", "on_error"),
    "layout": ("data", "layout"),
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
}


def build_config(config_file: Path | None, options: dict) -> RunConfig:
    config = load_config(config_file) if config_file else RunConfig()
    changes: dict[str, dict] = {"data": {}, "model": {}, "train": {}}
    for option, value in options.items():
        if value is None or option not in _OPTION_FIELDS:
            continue
        section, field = _OPTION_FIELDS[option]
        if option == "size":
            value = (value, value)
        elif option == "labels":
            value = tuple(s.strip() for s in value.split(",") if s.strip())
        elif option == "key_file":
            value = str(value)  # the path only: config.yaml never holds key material
        changes[section][field] = value
    return RunConfig(
        data=replace(config.data, **changes["data"]),
        model=replace(config.model, **changes["model"]),
        train=replace(config.train, **changes["train"]),
    )


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        out: Path = typer.Option(..., "--out", "-o", help="Run directory to create."),
        data: str = typer.Option(None, "--data", "-d", help="Labels CSV or MedMNIST .npz."),
        labels: str = typer.Option(None, help="Comma-separated label columns (default: nodule)."),
        size: int = typer.Option(None, help="Model input side in pixels (default 128)."),
        layout: str = typer.Option(None, help="Dataset layout (default: auto from the source)."),
        model: str = typer.Option(None, help="Registered model name (see `radcnn models`)."),
        weights: str = typer.Option(None, help="Initial weights: radcnn .safetensors, torchvision or TorchXRayVision."),
        weights_format: str = typer.Option(None, help="auto | radcnn | torchvision | torchxrayvision"),
        freeze_backbone: bool = typer.Option(None, "--freeze-backbone/--train-backbone", help="Train the head only."),
        backbone_lr_scale: float = typer.Option(None, help="Backbone learning rate = lr × this (default 1)."),
        epochs: int = typer.Option(None, help="Epochs (default 10)."),
        batch_size: int = typer.Option(None, help="Batch size (default 32)."),
        lr: float = typer.Option(None, help="Adam learning rate (default 1e-3)."),
        seed: int = typer.Option(None, help="Seed for split, initialisation, shuffling and augmentation (default 0)."),
        precision: str = typer.Option(None, help="auto | 32 | bf16 (auto: bf16 on AMX/AVX-512-bf16 CPUs)."),
        augment: str = typer.Option(None, help="none | light | standard | strong (training split only)."),
        class_balance: str = typer.Option(None, help="none | pos_weight | sampler."),
        lr_schedule: str = typer.Option(None, help="none | cosine | plateau."),
        early_stopping: int = typer.Option(None, help="Stop after this many epochs without val AUC gain (0 = off)."),
        accumulate: int = typer.Option(None, help="Gradient accumulation steps."),
        devices: int = typer.Option(None, help="Data-parallel processes (DDP; gloo on CPU)."),
        deterministic: bool = typer.Option(None, "--deterministic/--fast", help="Deterministic algorithms."),
        threshold_method: str = typer.Option(None, help="youden | sensitivity | specificity | f1 | fixed (on val)."),
        threshold_target: float = typer.Option(None, help="Target for sensitivity/specificity, e.g. 0.95."),
        on_error: str = typer.Option(None, help="fail | skip unreadable images."),
        config: Path = typer.Option(None, "--config", "-c", help="YAML/TOML config; options override it."),
        overwrite: bool = typer.Option(False, help="Replace an existing run directory."),
        resume: bool = typer.Option(False, help="Continue an interrupted run from its last checkpoint."),
        key_file: Path = KEY_FILE,
        passphrase_env: str = PASSPHRASE_ENV,
    ) -> None:
        """Train a model; writes the best model, split, logs and resolved config into OUT.

        With --key-file or --passphrase-env, an encrypted dataset (`radcnn encrypt`) is read in memory only: no
        decode cache is written, and split.csv is written encrypted (split.csv.rcenc). --resume needs a plaintext
        checkpoints/last.ckpt (Lightning loads it itself): decrypt it first if you encrypted it.
        """
        from radcnn.cli.app import quiet_lightning
        from radcnn.training.fit import fit, prepare_run_dir

        quiet_lightning()

        options = dict(locals())
        run_config = build_config(config, options)
        prepare_run_dir(out, overwrite=overwrite, resume=resume)  # fail before decoding anything
        where = (
            "memory (encrypted data: no cache)" if run_config.data.key_file or run_config.data.key_env else "the cache"
        )
        with ProgressCallback(f"decoding images into {where}") as progress:
            result = fit(run_config, out, overwrite=overwrite, resume=resume, cache_progress=progress)
        console.print(
            key_value_table(
                "training finished",
                {
                    "run directory": str(result.run_dir),
                    "model": result.spec.architecture,
                    "precision": result.precision,
                    "epochs run": result.epochs_run,
                    "best epoch": result.best_epoch,
                    "best validation AUC": result.best_val_auc,
                    "thresholds": ", ".join(f"{t:.3f}" for t in result.spec.thresholds)
                    + f" ({result.spec.threshold_method})",
                },
            )
        )
        if result.n_skipped:
            console.print(f"[yellow]skipped {result.n_skipped} input(s)[/]: see {result.run_dir / 'skipped.csv'}")
        console.print(f"next: radcnn evaluate {result.run_dir}")
