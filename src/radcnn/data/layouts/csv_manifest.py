"""Generic CSV manifest — your own table of image paths, patient ids and 0/1 labels (hospital exports, mixtures).

Dataset card
------------
Source:   any; this is the layout for local data (a PACS export with a labels spreadsheet, a curated subset).
Size:     any.
Labels:   one column per label, values 1 / 0 (also true/false, yes/no) and blank = unknown (NaN, masked in the
          loss). Several label columns make a multi-label task.
Licence:  the data owner's; radcnn reads the files in place and copies nothing.
Citation: —
Layout::

    labels.csv                      path,patient_id,nodule,effusion,site
    images/a.dcm                    images/a.dcm,P001,1,0,north
                                    images/b.png,P001,0,,north        (blank = unknown)

Paths are relative to the CSV's folder (or absolute). Column names are configurable: ``path_column``,
``patient_column`` (None: each image is its own patient, with a warning — patient-level splits are then impossible),
``site_column`` (→ ``site``), ``label_columns`` (None: every other column whose values are all 0/1/blank).
Everything else is kept as metadata. Bad rows — a label outside the allowed set, an empty path or patient id, a
duplicate row, a missing image file — go through ``on_error`` with the CSV row number.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import pandas as pd

from radcnn.data.layouts.registry import LAYOUTS
from radcnn.data.manifest import Manifest, read_labels_csv
from radcnn.errors import ManifestError

log = logging.getLogger(__name__)

_LABEL_TEXT = {"", "nan", "0", "1", "0.0", "1.0", "true", "false", "yes", "no"}


def _detect(path: Path) -> bool:
    """A .csv with a ``path`` column, or a folder holding exactly one such file."""
    if path.is_dir():
        candidates = list(path.glob("*.csv"))
        return len(candidates) == 1 and _detect(candidates[0])
    if not (path.is_file() and path.suffix.lower() == ".csv"):
        return False
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError):
        return False
    return "path" in header


@LAYOUTS.register(
    "csv",
    summary="Generic CSV: path, patient id and 0/1 label columns (names configurable)",
    detect=_detect,
    priority=80,
)
def load_csv_manifest(
    source: str | Path,
    *,
    on_error: str = "fail",
    check_files: bool = True,
    label_columns: tuple[str, ...] | str | None = None,
    path_column: str = "path",
    patient_column: str | None = "patient_id",
    site_column: str | None = None,
) -> Manifest:
    """Load a labels CSV (see the module docstring)."""
    source = Path(source)
    if source.is_dir():
        candidates = sorted(source.glob("*.csv"))
        if len(candidates) != 1:
            raise ManifestError(source, f"expected one .csv in the folder, found {len(candidates)}; pass the file")
        source = candidates[0]
    columns = {path_column: "path"}
    if patient_column:
        columns[patient_column] = "patient_id"
    if site_column:
        columns[site_column] = "site"
    if isinstance(label_columns, str):
        label_columns = tuple(c.strip() for c in label_columns.split(",") if c.strip())
    if label_columns is None:
        label_columns = infer_label_columns(source, exclude=set(columns))
    return read_labels_csv(
        source,
        label_columns,
        check_files=check_files,
        on_error=on_error,
        columns={k: v for k, v in columns.items() if k != v},
        patient_ids_from_paths=not patient_column,
    )


def infer_label_columns(csv_path: Path, *, exclude: set[str]) -> tuple[str, ...]:
    """Columns (other than `exclude`) whose every value reads as 0, 1 or blank, and not all blank."""
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ManifestError(csv_path, f"not a readable CSV file ({exc})") from None
    found = []
    for column in table.columns:
        if column in exclude or column in ("path", "patient_id", "site", "split"):
            continue
        values = set(table[column].str.strip().str.lower())
        if values <= _LABEL_TEXT and values - {"", "nan"}:
            found.append(column)
    if not found:
        raise ManifestError(csv_path, "no label columns given and none hold only 0/1/blank values; pass label_columns")
    log.info("%s: label columns inferred as %s", csv_path, ", ".join(found))
    return tuple(found)
