"""Shared terminal rendering: consoles and a metrics table. Only cli/ renders."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table


def _width(stream) -> int | None:
    """Rich assumes 80 columns when output is piped or captured and then cuts table cells to "0.1…"; logs, CI and
    `| tee` have room, so use 160 there (COLUMNS, when set, still wins)."""
    return None if stream.isatty() or os.environ.get("COLUMNS") else 160


console = Console(width=_width(sys.stdout))
error_console = Console(stderr=True, width=_width(sys.stderr))


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def key_value_table(title: str, rows: Mapping[str, Any]) -> Table:
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in rows.items():
        table.add_row(key, format_value(value))
    return table


class ProgressCallback:
    """A Rich progress bar exposed as the `progress(done, total)` callback that library functions accept."""

    def __init__(self, description: str):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=error_console,
            transient=False,
        )
        self._description = description
        self._task = None

    def __enter__(self) -> ProgressCallback:
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def __call__(self, done: int, total: int) -> None:
        if self._task is None:
            self._task = self._progress.add_task(self._description, total=total)
        self._progress.update(self._task, completed=done, total=total)


def metrics_table(metrics: dict) -> Table:
    """metrics.json → one table: rows are metrics, columns per label with the 95% CI when present."""
    table = Table(title=f"{metrics['split']} split — {metrics['n_images']} images, {metrics['n_patients']} patients")
    table.add_column("metric")
    labels = metrics["labels"]
    for name, entry in labels.items():
        cut = entry["threshold"]
        table.add_column(
            f"{name} (threshold {cut:.3f})" if cut == cut else f"{name} (per-fold thresholds)", justify="right"
        )
        if entry.get("ci95"):
            table.add_column("95% CI", justify="right")
    rows = (
        "accuracy",
        "sensitivity",
        "specificity",
        "precision",
        "npv",
        "f1",
        "balanced_accuracy",
        "roc_auc",
    )
    rows += ("pr_auc", "brier", "ece")
    for key in rows:
        cells = []
        for entry in labels.values():
            cells.append(format_value(entry["metrics"].get(key, float("nan"))))
            if entry.get("ci95"):
                ci = entry["ci95"].get(key)
                cells.append(f"{ci['low']:.3f} – {ci['high']:.3f}" if ci else "")
        table.add_row(key, *cells)
    for entry in labels.values():
        m = entry["metrics"]
        table.caption = f"confusion matrix [[TN FP] [FN TP]] = [[{m['tn']} {m['fp']}] [{m['fn']} {m['tp']}]]"
        break
    return table
