"""`radcnn train`: fit a registered model on a labels CSV or MedMNIST .npz."""

from __future__ import annotations

from pathlib import Path

import typer

from radcnn.cli.render import ProgressCallback, console, key_value_table
from radcnn.config import DataConfig, ModelConfig, RunConfig, TrainConfig, load_config, replace


def build_config(
    config_file: Path | None,
    data: str | None,
    labels: str | None,
    size: int | None,
    model: str | None,
    epochs: int | None,
    batch_size: int | None,
    lr: float | None,
    seed: int | None,
    precision: str | None,
    on_error: str | None,
) -> RunConfig:
    base = load_config(config_file) if config_file else RunConfig()
    label_columns = tuple(s.strip() for s in labels.split(",")) if labels else None
    return RunConfig(
        data=replace(
            base.data if config_file else DataConfig(),
            source=data,
            label_columns=label_columns,
            image_size=(size, size) if size else None,
            on_error=on_error,
        ),
        model=replace(base.model if config_file else ModelConfig(), name=model),
        train=replace(
            base.train if config_file else TrainConfig(),
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            precision=precision,
        ),
    )


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        data: str = typer.Option(None, "--data", "-d", help="Labels CSV or MedMNIST .npz."),
        out: Path = typer.Option(..., "--out", "-o", help="Run directory to create."),
        labels: str = typer.Option(None, help="Comma-separated label columns (default: nodule)."),
        size: int = typer.Option(None, help="Model input side in pixels (default 128)."),
        model: str = typer.Option(None, help="Registered model name (see `radcnn models`)."),
        epochs: int = typer.Option(None, help="Epochs (default 10)."),
        batch_size: int = typer.Option(None, help="Batch size (default 32)."),
        lr: float = typer.Option(None, help="Adam learning rate (default 1e-3)."),
        seed: int = typer.Option(None, help="Seed for split, initialisation and shuffling (default 0)."),
        precision: str = typer.Option(None, help="auto | 32 | bf16 (auto: bf16 on AMX/AVX-512-bf16 CPUs)."),
        on_error: str = typer.Option(None, help="fail | skip unreadable images."),
        config: Path = typer.Option(None, "--config", "-c", help="YAML/TOML config; options override it."),
        overwrite: bool = typer.Option(False, help="Replace an existing run directory."),
    ) -> None:
        """Train a model; writes the best model, split, logs and resolved config into OUT."""
        from radcnn.training.fit import fit, prepare_run_dir

        run_config = build_config(config, data, labels, size, model, epochs, batch_size, lr, seed, precision, on_error)
        prepare_run_dir(out, overwrite)  # fail before decoding anything
        with ProgressCallback("decoding images into the cache") as progress:
            result = fit(run_config, out, overwrite=overwrite, cache_progress=progress)
        console.print(
            key_value_table(
                "training finished",
                {
                    "run directory": str(result.run_dir),
                    "model": result.spec.architecture,
                    "precision": result.precision,
                    "best epoch": result.best_epoch,
                    "best validation AUC": result.best_val_auc,
                    "thresholds (chosen on val)": ", ".join(f"{t:.3f}" for t in result.spec.thresholds),
                },
            )
        )
