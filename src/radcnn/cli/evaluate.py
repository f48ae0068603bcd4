"""`radcnn evaluate`: score a run on its test (or val) split with patient-level 95% CIs."""

from __future__ import annotations

from pathlib import Path

import typer

from radcnn.cli.crypto import KEY_FILE, PASSPHRASE_ENV, optional_secret
from radcnn.cli.render import console, metrics_table


def register(app: typer.Typer) -> None:
    @app.command()
    def evaluate(
        run: Path = typer.Argument(..., help="Run directory written by `radcnn train`."),
        split: str = typer.Option("test", help="Which split to score: test | val | train."),
        threshold: float = typer.Option(None, help="Override the decision threshold chosen on val."),
        bootstrap: int = typer.Option(1000, help="Patient bootstrap resamples for the 95% CIs (0 = none)."),
        seed: int = typer.Option(0, help="Bootstrap seed."),
        key_file: Path = KEY_FILE,
        passphrase_env: str = PASSPHRASE_ENV,
    ) -> None:
        """Write metrics.json and predictions.csv into RUN and show the metrics.

        A run trained on encrypted data is read with its key (--key-file / --passphrase-env, else the key named in
        its config.yaml); its predictions are then written encrypted (predictions.csv.rcenc).

        Example: radcnn evaluate runs/seed --bootstrap 1000
        """
        from radcnn.reporting.evaluate_run import evaluate_run

        key = optional_secret(key_file, passphrase_env)
        result = evaluate_run(run, split=split, threshold=threshold, n_boot=bootstrap, seed=seed, key=key)
        console.print(metrics_table(result.metrics))
        console.print(f"metrics: {result.metrics_path}\npredictions: {result.predictions_path}")
