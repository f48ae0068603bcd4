"""`radcnn predict`: probability, threshold and decision per image file or folder, as a table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from pathlib import Path

import typer
from rich.table import Table

from radcnn.cli.crypto import KEY_FILE, PASSPHRASE_ENV, optional_secret
from radcnn.cli.render import ProgressCallback, console, error_console
from radcnn.io import write_text_atomic

log = logging.getLogger(__name__)


def _short_path(path: str) -> str:
    """The path relative to the working directory when that is shorter (tables are narrow)."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return relative if len(relative) < len(path) else path


def render_predictions(predictions, fmt: str) -> str | Table:
    rows = []
    for p in predictions:
        row = {"path": p.path}
        for name, prob in p.probabilities.items():
            row[f"{name}_probability"] = round(prob, 6)
            row[f"{name}_threshold"] = round(p.thresholds[name], 6) if name in p.thresholds else ""
            row[f"{name}_positive"] = p.decisions[name]
        if p.model is not None:
            row["model"], row["model_version"] = p.model.name, p.model.version
        row["warnings"] = "; ".join(p.warnings)
        row["error"] = p.error or ""
        rows.append(row)
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    tail = ("model", "model_version", "warnings", "error")
    columns = sorted({k for r in rows for k in r}, key=lambda k: (k != "path", tail.index(k) if k in tail else -1, k))
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()
    table = Table(title="predictions")
    for column in columns:
        if column in ("model", "model_version"):
            continue  # one model for every row: said in the caption instead
        table.add_column(column, justify="left" if column in ("path", "warnings", "error") else "right")
    for row in rows:
        shown = {**row, "path": _short_path(row["path"])}
        table.add_row(*(str(shown.get(c, "")) for c in columns if c not in ("model", "model_version")))
    first = next((p.model for p in predictions if p.model is not None), None)
    if first is not None:
        table.caption = f"model {first.name}, version {first.version} ({first.architecture})"
    return table


def register(app: typer.Typer) -> None:
    @app.command()
    def predict(
        model: Path = typer.Argument(..., help="Run directory or .safetensors model file (or .rcenc with a key)."),
        images: list[Path] = typer.Argument(..., help="Image files and/or folders (searched recursively)."),
        fmt: str = typer.Option("table", "--format", "-f", help="table | csv | json"),
        output: Path = typer.Option(None, "--output", "-o", help="Write CSV/JSON here instead of stdout."),
        on_error: str = typer.Option("fail", help="fail | skip (unreadable files get an error row)."),
        backend: str = typer.Option("torch", help="torch | onnx (ONNX Runtime, checked against PyTorch at load)."),
        batch_size: int = typer.Option(32, min=1, help="Images per forward pass."),
        key_file: Path = KEY_FILE,
        passphrase_env: str = PASSPHRASE_ENV,
    ) -> None:
        """Predict the probability and decision for each image.

        Folders are searched recursively; files that are not images (labels.csv, DICOMDIR, ...) are skipped and
        counted. With --key-file or --passphrase-env, an encrypted model and encrypted images (`radcnn encrypt`)
        are decrypted in memory only.

        Example: radcnn predict runs/demo data/images -f csv -o predictions.csv
        """
        from radcnn.cli.serve_logging import quiet_exporter
        from radcnn.errors import ConfigError
        from radcnn.serve.files import collect_images
        from radcnn.serve.predictor import Predictor

        if fmt not in ("table", "csv", "json"):
            raise ConfigError(f"--format must be table, csv or json, got {fmt!r}")
        if output is not None and fmt == "table":
            raise ConfigError("--output needs --format csv or json")
        quiet_exporter()
        key = optional_secret(key_file, passphrase_env)
        collected = collect_images(images)
        for path, why in collected.skipped:
            log.debug("skipped %s: %s", path, why)
        if collected.skipped:
            log.info("skipped %d files that are not images (run with -v to list them)", len(collected.skipped))
        predictor = Predictor.from_path(model, key=key, backend=backend)
        with ProgressCallback("predicting") as progress:
            predictions = predictor.predict_files(
                collected.files, on_error=on_error, batch_size=batch_size, progress=progress
            )
        failed = sum(p.error is not None for p in predictions)
        if failed:
            error_console.print(f"{failed} of {len(predictions)} files could not be read (see the error column)")
        rendered = render_predictions(predictions, fmt)
        if output is not None:
            write_text_atomic(output, rendered)
            console.print(f"wrote {output} ({len(predictions)} images)")
        elif isinstance(rendered, Table):
            console.print(rendered)
        else:
            typer.echo(rendered, nl=False)
