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
``site_column`` (→ ``site``), ``label_columns`` (None: the ``labels`` listed by a ``dataset.json`` card beside the
CSV — `radcnn synth` writes one — else every other column whose values are all 0/1/blank).

Encrypted at rest: the CSV may be stored as ``labels.csv.rcenc`` and its images as ``<name>.rcenc``
(`radcnn encrypt`); with a key both are read in memory (the key is passed by `prepare_data`, never a user option).
Everything else is kept as metadata. Bad rows — a label outside the allowed set, an empty path or patient id, a
duplicate row, a missing image file — go through ``on_error`` with the CSV row number.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from pathlib import Path

import pandas as pd

from radcnn.data.layouts.registry import LAYOUTS
from radcnn.data.manifest import Manifest, read_labels_csv
from radcnn.encryption.files import is_encrypted_file, key_needed, read_plaintext, stored_file
from radcnn.encryption.format import SUFFIX
from radcnn.errors import ConfigError, ManifestError

log = logging.getLogger(__name__)

_LABEL_TEXT = {"", "nan", "0", "1", "0.0", "1.0", "true", "false", "yes", "no"}


CARD = "dataset.json"


def find_labels_csv(source: str | os.PathLike[str]) -> Path | None:
    """The labels CSV of `source` (plain or `.csv.rcenc`): the file itself, `source.rcenc`, or the one CSV in a
    folder; None when `source` holds no CSV. Several CSVs in one folder are ambiguous (ConfigError)."""
    source = Path(source)
    if source.is_dir():
        found = sorted({*source.glob("*.csv"), *source.glob(f"*.csv{SUFFIX}")})
        found = [p for p in found if p.is_file()]
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise ConfigError(f"{source}: several labels files ({names}); pass the one to use as data.source")
        return found[0] if found else None
    stored = stored_file(source)
    if stored is None:
        return None
    return stored if stored.name.lower().removesuffix(SUFFIX).endswith(".csv") else None


def _detect(path: Path) -> bool:
    """A .csv (plain or encrypted) with a ``path`` column, or a folder holding exactly one such file."""
    try:
        found = find_labels_csv(path)
    except ConfigError:
        return False
    if found is None:
        return False
    if is_encrypted_file(found):
        return True  # its header can only be read with the key; a lone encrypted CSV is a labels file
    path = found
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
    key=None,
) -> Manifest:
    """Load a labels CSV (see the module docstring). `key` reads a CSV and images encrypted at rest."""
    found = find_labels_csv(source)
    if found is None:
        raise ManifestError(source, "no labels CSV (plain or .csv.rcenc) found")
    if is_encrypted_file(found):
        if key is None:
            raise key_needed(found)
        read_plaintext(found, key)  # authenticate first, so that a wrong key is reported on the labels file
    source = found.with_name(found.name.removesuffix(SUFFIX))
    columns = {path_column: "path"}
    if patient_column:
        columns[patient_column] = "patient_id"
    if site_column:
        columns[site_column] = "site"
    if isinstance(label_columns, str):
        label_columns = tuple(c.strip() for c in label_columns.split(",") if c.strip())
    if label_columns is None:
        label_columns = card_labels(source, key=key) or infer_label_columns(source, exclude=set(columns), key=key)
    return read_labels_csv(
        source,
        label_columns,
        check_files=check_files,
        on_error=on_error,
        columns={k: v for k, v in columns.items() if k != v},
        patient_ids_from_paths=not patient_column,
        key=key,
    )


def card_labels(csv_path: Path, *, key=None) -> tuple[str, ...]:
    """The default labels a ``dataset.json`` card beside the CSV names (empty when there is no card)."""
    card = csv_path.parent / CARD
    stored = stored_file(card)
    if stored is None:
        return ()
    if key is None and is_encrypted_file(stored):
        log.warning("%s is encrypted and no key was given: label columns are inferred from the CSV", stored)
        return ()
    try:
        labels = json.loads(read_plaintext(stored, key)).get("labels", [])
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
        raise ManifestError(card, f"not a readable dataset card ({exc}); expected JSON with a 'labels' list") from None
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ManifestError(card, f"'labels' must be a list of column names, got {labels!r}")
    return tuple(labels)


def infer_label_columns(csv_path: Path, *, exclude: set[str], key=None) -> tuple[str, ...]:
    """Columns (other than `exclude`) whose every value reads as 0, 1 or blank, and not all blank."""
    try:
        text = read_plaintext(stored_file(csv_path) or csv_path, key)
        table = pd.read_csv(io.BytesIO(text), dtype=str, keep_default_na=False)
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
