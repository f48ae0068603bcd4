"""`radcnn predict`: probability and decision per image file, as a table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import typer
from rich.table import Table

from radcnn.cli.crypto import KEY_FILE, PASSPHRASE_ENV, optional_secret
from radcnn.cli.render import console
from radcnn.io import write_text_atomic


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
            row[f"{name}_positive"] = p.decisions[name]
        row["error"] = p.error or ""
        rows.append(row)
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    columns = sorted({k for r in rows for k in r}, key=lambda k: (k != "path", k == "error", k))
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()
    table = Table(title="predictions")
    for column in columns:
        table.add_column(column, justify="left" if column in ("path", "error") else "right")
    for row in rows:
        shown = {**row, "path": _short_path(row["path"])}
        table.add_row(*(str(shown.get(c, "")) for c in columns))
    return table


def register(app: typer.Typer) -> None:
    @app.command()
    def predict(
        model: Path = typer.Argument(..., help="Run directory or .safetensors model file (or .rcenc with a key)."),
        images: list[Path] = typer.Argument(..., help="One or more image files (DICOM, PNG, JPEG, ..., or .rcenc)."),
        fmt: str = typer.Option("table", "--format", "-f", help="table | csv | json"),
        output: Path = typer.Option(None, "--output", "-o", help="Write CSV/JSON here instead of stdout."),
        on_error: str = typer.Option("fail", help="fail | skip (unreadable files get an error row)."),
        key_file: Path = KEY_FILE,
        passphrase_env: str = PASSPHRASE_ENV,
    ) -> None:
        """Predict the probability and decision for each image.

        With --key-file or --passphrase-env, an encrypted model and encrypted images (`radcnn encrypt`) are
        decrypted in memory only.

        Example: radcnn predict runs/seed scans/a.dcm scans/b.png --format csv -o predictions.csv
        """
        from radcnn.errors import ConfigError
        from radcnn.serve.predictor import Predictor

        if fmt not in ("table", "csv", "json"):
            raise ConfigError(f"--format must be table, csv or json, got {fmt!r}")
        key = optional_secret(key_file, passphrase_env)
        predictor = Predictor.from_path(model, key=key)
        rendered = render_predictions(predictor.predict_files(images, on_error=on_error), fmt)
        if output is not None:
            if isinstance(rendered, Table):
                raise ConfigError("--output needs --format csv or json")
            write_text_atomic(output, rendered)
            console.print(f"wrote {output}")
        elif isinstance(rendered, Table):
            console.print(rendered)
        else:
            typer.echo(rendered, nl=False)
