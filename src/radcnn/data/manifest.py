"""The manifest: one table row per image (path, patient_id, labels, metadata) — radcnn's one data contract.

Labels are an N×C float32 array with NaN for unknown. A labels CSV is validated row by row: every problem names
the file, the CSV row (the header is row 1, so the first data row is row 2) and the column.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from radcnn.errors import ManifestError

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("path", "patient_id")
# Values accepted in a binary label column; blank means "unknown" (NaN, masked in the loss).
_POSITIVE = {"1", "1.0", "true", "yes"}
_NEGATIVE = {"0", "0.0", "false", "no"}


@dataclass(frozen=True)
class Manifest:
    """Images (absolute paths) with patient ids, labels and metadata, aligned row by row."""

    table: pd.DataFrame
    label_names: tuple[str, ...]
    source: Path | None = None
    skipped: tuple[tuple[str, str], ...] = field(default=())  # (what, why) for rows left out under on_error=skip

    def __len__(self) -> int:
        return len(self.table)

    @property
    def paths(self) -> list[Path]:
        return [Path(p) for p in self.table["path"]]

    def labels(self) -> np.ndarray:
        return self.table[list(self.label_names)].to_numpy(dtype=np.float32)

    def select(self, rows: np.ndarray | list[int]) -> Manifest:
        return Manifest(self.table.iloc[rows].reset_index(drop=True), self.label_names, self.source, self.skipped)


def read_labels_csv(
    csv_path: str | Path,
    label_columns: tuple[str, ...] | list[str],
    *,
    check_files: bool = True,
    on_error: str = "fail",
) -> Manifest:
    """Read a labels CSV (columns `path`, `patient_id`, the label columns, anything else as metadata).

    `path` is resolved relative to the CSV's folder. With `on_error="skip"`, rows whose image file is missing are
    left out and listed in `Manifest.skipped`; every other problem is an error because it means the table itself is
    wrong.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise ManifestError(csv_path, "labels file not found")
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ManifestError(csv_path, f"not a readable CSV file ({exc})") from None
    label_columns = tuple(label_columns)
    if not label_columns:
        raise ManifestError(csv_path, "no label columns were given")
    for column in (*REQUIRED_COLUMNS, *label_columns):
        if column not in table.columns:
            raise ManifestError(csv_path, f"missing column; the file has: {', '.join(table.columns)}", column=column)
    if table.empty:
        raise ManifestError(csv_path, "the table has a header but no rows")

    for column in label_columns:
        table[column] = _parse_label_column(table[column], csv_path, column)
    for column in REQUIRED_COLUMNS:
        blank = table.index[table[column].str.strip() == ""]
        if len(blank):
            raise ManifestError(csv_path, f"empty {column}", row=int(blank[0]) + 2, column=column)

    root = csv_path.parent
    table["path"] = [str((root / p).resolve()) if not Path(p).is_absolute() else p for p in table["path"]]
    duplicated = table.index[table["path"].duplicated()]
    if len(duplicated):
        first = int(duplicated[0])
        raise ManifestError(csv_path, f"duplicate row for image {table.at[first, 'path']}", row=first + 2)

    skipped: list[tuple[str, str]] = []
    if check_files:
        exists = np.array([Path(p).is_file() for p in table["path"]])
        for row in np.flatnonzero(~exists):
            if on_error == "fail":
                raise ManifestError(
                    csv_path,
                    f"image file not found: {table.at[row, 'path']}",
                    row=int(row) + 2,
                    column="path",
                )
            skipped.append((f"{csv_path} row {row + 2}", f"image file not found: {table.at[row, 'path']}"))
        if skipped:
            log.warning("%s: skipped %d row(s) whose image file is missing", csv_path, len(skipped))
            table = table[exists].reset_index(drop=True)
    return Manifest(table=table, label_names=label_columns, source=csv_path, skipped=tuple(skipped))


def _parse_label_column(values: pd.Series, csv_path: Path, column: str) -> pd.Series:
    parsed = np.full(len(values), np.nan, dtype=np.float32)
    for i, raw in enumerate(values):
        text = raw.strip().lower()
        if text in _POSITIVE:
            parsed[i] = 1.0
        elif text in _NEGATIVE:
            parsed[i] = 0.0
        elif text not in ("", "nan"):
            raise ManifestError(
                csv_path,
                f"unknown label value {raw!r}; expected 0, 1 or blank (unknown)",
                row=i + 2,
                column=column,
            )
    return pd.Series(parsed, index=values.index)


def manifest_from_arrays(
    labels: np.ndarray, label_names: tuple[str, ...], *, prefix: str, patient_ids: list[str] | None = None
) -> Manifest:
    """A manifest for in-memory images (e.g. MedMNIST), one pseudo-path per row; each image its own patient
    unless patient ids are given (MedMNIST publishes none)."""
    labels = np.asarray(labels, dtype=np.float32).reshape(len(labels), -1)
    n = len(labels)
    table = pd.DataFrame({"path": [f"{prefix}[{i}]" for i in range(n)]})
    table["patient_id"] = patient_ids if patient_ids is not None else [f"{prefix}-{i}" for i in range(n)]
    for j, name in enumerate(label_names):
        table[name] = labels[:, j]
    return Manifest(table=table, label_names=tuple(label_names))
