"""`radcnn evaluate`: score a run on its test (or val) split with 95% CIs, and on external cohorts."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from radcnn.cli.crypto import KEY_FILE, PASSPHRASE_ENV, optional_secret
from radcnn.cli.render import console, metrics_table

SIDE_BY_SIDE = ("roc_auc", "pr_auc", "accuracy", "sensitivity", "specificity", "ppv", "npv", "ece")


def register(app: typer.Typer) -> None:
    @app.command()
    def evaluate(
        run: Path = typer.Argument(..., help="Run directory written by `radcnn train`."),
        split: str = typer.Option("test", help="Which split to score: test | val | train."),
        threshold: float = typer.Option(None, help="Override the decision threshold chosen on val."),
        bootstrap: int = typer.Option(1000, help="Patient bootstrap resamples for the AUC/ECE CIs (0 = none)."),
        seed: int = typer.Option(0, help="Bootstrap seed."),
        external: str = typer.Option(
            None, help="External dataset (any supported layout): scored with the run's threshold unchanged."
        ),
        external_layout: str = typer.Option("auto", help="Layout of the --external dataset (default: detected)."),
        external_split: str = typer.Option("", help="Use only this partition of the --external dataset, e.g. test."),
        external_name: str = typer.Option("", help="Name of the external cohort (default: the dataset's name)."),
        external_option: list[str] = typer.Option([], "--external-option", help="Layout option KEY=VALUE."),
        key_file: Path = KEY_FILE,
        passphrase_env: str = PASSPHRASE_ENV,
    ) -> None:
        """Write metrics.json and predictions.csv into RUN and show the metrics.

        A run trained with --hold-out-site is also scored on its held-out site; --external DATA scores any other
        labelled dataset (labels matched by name). Both land in metrics.json's "external" section and are shown
        beside the internal test metrics.

        A run trained on encrypted data is read with its key (--key-file / --passphrase-env, else the key named in
        its config.yaml); its predictions are then written encrypted (predictions.csv.rcenc).

        Example: radcnn evaluate runs/seed --bootstrap 1000

        Example (external cohort): radcnn evaluate runs/seed --external other_hospital/labels.csv
        """
        from radcnn.cli.data import parse_option
        from radcnn.reporting.evaluate_run import evaluate_run

        key = optional_secret(key_file, passphrase_env)
        if external:
            from radcnn.errors import ConfigError
            from radcnn.reporting.external import evaluate_external

            if split != "test" or threshold is not None:
                raise ConfigError(
                    "--external is scored beside the test split with the run's own threshold; "
                    "drop --split/--threshold (evaluate other splits or thresholds in a separate command)"
                )

            result = evaluate_external(
                run,
                external,
                layout=external_layout,
                layout_options=dict(parse_option(text) for text in external_option),
                split=external_split,
                name=external_name,
                n_boot=bootstrap,
                seed=seed,
                key=key,
            )
        else:
            result = evaluate_run(run, split=split, threshold=threshold, n_boot=bootstrap, seed=seed, key=key)
            console.print(metrics_table(result.metrics))
        for table in external_tables(result.metrics):
            console.print(table)
        console.print(f"metrics: {result.metrics_path}\npredictions: {result.predictions_path}")


def _cell(entry: dict, key: str) -> str:
    value = entry["metrics"].get(key)
    if key in ("roc_auc", "pr_auc") and entry.get("auc_note"):
        return entry["auc_note"]
    if key == "ece":
        value = entry.get("calibration", {}).get("raw", {}).get("ece", value)
    if value is None or value != value:
        return "undefined"
    ci = entry.get("ci95", {}).get(key) or {}
    low, high = ci.get("low"), ci.get("high")
    if low is None or high is None or low != low or high != high:
        return f"{value:.3f}"
    return f"{value:.3f} ({low:.3f}–{high:.3f})"


def external_tables(metrics: dict) -> list[Table]:
    """One table per label: internal test vs each external cohort, estimate (95% CI) and the interval method."""
    cohorts = metrics.get("external") or {}
    if not cohorts:
        return []
    tables = []
    for label, internal in metrics["labels"].items():
        table = Table(title=f"{label}: internal test vs external (threshold {internal['threshold']:.4g}, unchanged)")
        table.add_column("metric")
        table.add_column(f"internal test ({metrics['n_images']} images)", justify="right")
        for name, cohort in cohorts.items():
            table.add_column(f"{name} ({cohort['n_images']} images)", justify="right")
        table.add_column("interval")
        for key in SIDE_BY_SIDE:
            method = (internal.get("ci95", {}).get(key) or {}).get("method", "")
            cells = [_cell(cohort["labels"][label], key) for cohort in cohorts.values() if label in cohort["labels"]]
            table.add_row(key, _cell(internal, key), *cells, method)
        tables.append(table)
    return tables
