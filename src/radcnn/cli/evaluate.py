"""`radcnn evaluate`: score a run on its test (or val) split with patient-level 95% CIs."""

from __future__ import annotations

from pathlib import Path

import typer

from radcnn.cli.render import console, metrics_table


def register(app: typer.Typer) -> None:
    @app.command()
    def evaluate(
        run: Path = typer.Argument(..., help="Run directory written by `radcnn train`."),
        split: str = typer.Option("test", help="Which split to score: test | val | train."),
        threshold: float = typer.Option(None, help="Override the decision threshold chosen on val."),
        bootstrap: int = typer.Option(1000, help="Patient bootstrap resamples for the 95% CIs (0 = none)."),
        seed: int = typer.Option(0, help="Bootstrap seed."),
    ) -> None:
        """Write metrics.json and predictions.csv into RUN and show the metrics."""
        from radcnn.evaluation.evaluate import evaluate_run

        result = evaluate_run(run, split=split, threshold=threshold, n_boot=bootstrap, seed=seed)
        console.print(metrics_table(result.metrics))
        console.print(f"metrics: {result.metrics_path}\npredictions: {result.predictions_path}")
