"""The manifest: one table row per image (path, patient_id, labels, metadata) — radcnn's one data contract.

Labels are an N×C float32 array with NaN for unknown. A labels CSV is validated row by row: every problem names
the file, the CSV row (the header is row 1, so the first data row is row 2) and the column.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from radcnn.encryption.files import read_plaintext, stored_file
from radcnn.encryption.format import KEY_HELP
from radcnn.errors import ManifestError

if TYPE_CHECKING:
    from radcnn.encryption.keys import Secret

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
    columns: dict[str, str] | None = None,
    patient_ids_from_paths: bool = False,
    key: Secret | bytes | None = None,
) -> Manifest:
    """Read a labels CSV (columns `path`, `patient_id`, the label columns, anything else as metadata).

    `path` is resolved relative to the CSV's folder. `columns` renames the file's own column names to radcnn's
    (e.g. ``{"Image": "path", "PatientID": "patient_id", "Hospital": "site"}``). With `patient_ids_from_paths`, a
    file without a patient column gets one patient per image (logged: patient-level splitting is then impossible).

    Encryption at rest: a labels file or image stored as ``<name>.rcenc`` (`radcnn encrypt`) is found under its
    plain name. The labels file is decrypted in memory with `key` (an encrypted file without a key raises
    `KeyNeededError` naming it); image paths stay the plain names, and `check_files` accepts an encrypted image
    only when a key is given (without one the row reports that a key is needed).

    Row problems — a label outside {0, 1, blank}, an empty path or patient id, a duplicate row for one image, an image
    file that does not exist — raise ManifestError (file, row, column) under `on_error="fail"`; under
    `on_error="skip"` the row is left out and listed in `Manifest.skipped`. Problems with the table itself (missing
    file or column, no rows) always raise.
    """
    if on_error not in ("fail", "skip"):
        raise ValueError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
    csv_path = Path(csv_path)
    stored = stored_file(csv_path)
    if stored is None:
        raise ManifestError(csv_path, "labels file not found")
    try:
        # Read into memory first: an encrypted labels file is decrypted there and never written out.
        table = pd.read_csv(io.BytesIO(read_plaintext(stored, key)), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise ManifestError(csv_path, f"not a readable CSV file ({exc})") from None
    for column in columns or {}:
        if column not in table.columns:
            raise ManifestError(csv_path, f"missing column; the file has: {', '.join(table.columns)}", column=column)
    table = table.rename(columns=dict(columns or {}))
    if patient_ids_from_paths and "patient_id" not in table.columns and "path" in table.columns:
        log.warning("%s has no patient column: each image counts as its own patient", csv_path)
        table["patient_id"] = table["path"]
    label_columns = tuple(label_columns)
    if not label_columns:
        raise ManifestError(csv_path, "no label columns were given")
    for column in (*REQUIRED_COLUMNS, *label_columns):
        if column not in table.columns:
            raise ManifestError(csv_path, f"missing column; the file has: {', '.join(table.columns)}", column=column)
    if table.empty:
        raise ManifestError(csv_path, "the table has a header but no rows")

    bad_rows: set[int] = set()
    skipped: list[tuple[str, str]] = []

    def report(row: int, reason: str, column: str | None) -> None:
        # `row` is the table index; the CSV row is index + 2 (the header is row 1).
        if on_error == "fail":
            raise ManifestError(csv_path, reason, row=row + 2, column=column)
        bad_rows.add(row)
        where = f"{csv_path} row {row + 2}" + (f", column {column!r}" if column else "")
        skipped.append((where, reason))

    for column in label_columns:
        table[column] = _parse_label_column(table[column], column, report)
    for column in REQUIRED_COLUMNS:
        for row in table.index[table[column].str.strip() == ""]:
            report(int(row), f"empty {column}", column)

    root = csv_path.parent
    table["path"] = [str((root / p).resolve()) if p and not Path(p).is_absolute() else p for p in table["path"]]
    for row in table.index[table["path"].duplicated() & (table["path"] != "")]:
        report(int(row), f"duplicate row: image {table.at[row, 'path']} is listed already", None)

    if check_files:
        for row in table.index:
            path = table.at[row, "path"]
            if row not in bad_rows and path and not Path(path).is_file():
                found = stored_file(path)
                if found is None:
                    report(int(row), f"image file not found: {path}", "path")
                elif key is None:
                    report(int(row), f"image file is encrypted ({found.name}); a key is needed: {KEY_HELP}", "path")
    if skipped:
        log.warning("%s: skipped %d row(s) with problems", csv_path, len(bad_rows))
        table = table.drop(index=sorted(bad_rows)).reset_index(drop=True)
        if table.empty:
            raise ManifestError(csv_path, f"no usable rows left after skipping {len(bad_rows)} bad row(s)")
    return Manifest(table=table, label_names=label_columns, source=csv_path, skipped=tuple(skipped))


def _parse_label_column(values: pd.Series, column: str, report) -> pd.Series:
    parsed = np.full(len(values), np.nan, dtype=np.float32)
    for i, raw in enumerate(values):
        text = raw.strip().lower()
        if text in _POSITIVE:
            parsed[i] = 1.0
        elif text in _NEGATIVE:
            parsed[i] = 0.0
        elif text not in ("", "nan"):
            report(i, f"unknown label value {raw!r}; expected 0, 1 or blank (unknown)", column)
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
