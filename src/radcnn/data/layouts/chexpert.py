"""CheXpert — 224,316 chest radiographs of 65,240 patients with 14 observations, including uncertain labels.

Dataset card
------------
Source:   Stanford ML Group, https://stanfordmlgroup.github.io/competitions/chexpert/ (registration required);
          "CheXpert-v1.0-small" is the downsampled (~11 GB) release most work uses.
Size:     train 223,414 images (frontal and lateral) of 64,540 patients; valid 234 images of 200 patients,
          labelled by three radiologists.
Labels:   14 observations, multi-label: No Finding, Enlarged Cardiomediastinum, Cardiomegaly, Lung Opacity,
          Lung Lesion, Edema, Consolidation, Pneumonia, Atelectasis, Pneumothorax, Pleural Effusion, Pleural Other,
          Fracture, Support Devices. Values: 1.0 positive, 0.0 negative, -1.0 uncertain, blank not mentioned.
Licence:  Stanford University School of Medicine CheXpert Dataset Research Use Agreement (non-commercial
          research only; no redistribution).
Citation: Irvin et al., "CheXpert: A Large Chest Radiograph Dataset with Uncertainty Labels and Expert Comparison",
          AAAI 2019.
Layout::

    CheXpert-v1.0-small/               <- pass this folder (or train.csv / valid.csv itself)
      train.csv  valid.csv             Path,Sex,Age,Frontal/Lateral,AP/PA,<14 observations>
      train/patient00001/study1/view1_frontal.jpg
      valid/patient64541/study1/view1_frontal.jpg

The CSV paths start with the release folder ("CheXpert-v1.0-small/train/..."); that first component is replaced
by the folder passed in, so the tree may be renamed or moved.

Label policy (radcnn's choice, following the paper's terms):
- ``uncertainty``: what -1.0 becomes — "ignore" (U-Ignore, default: NaN, masked in the loss), "ones" (U-Ones),
  "zeros" (U-Zeros). The paper found U-Ones best for Atelectasis and Edema, U-Zeros for Consolidation.
- ``blank``: a blank cell means "not mentioned in the report", which is not the same as negative, so the default
  is "nan" (unknown, masked). "zeros" follows the common convention of treating not-mentioned as negative
  (most public baselines do this); choose it when every label must be known.
- ``views``: "all" (default), "frontal" or "lateral" (the Frontal/Lateral column).

Columns: ``path``, ``patient_id`` (``patientNNNNN`` from the path), the 14 observations, ``study``
(``patientNNNNN/studyK``), ``view`` (Frontal/Lateral), ``projection`` (AP/PA), ``sex``, ``age``, ``split``
(train.csv → train, valid.csv → val), ``dataset``.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from radcnn.data.layouts.common import Problems, select_labels
from radcnn.data.layouts.registry import LAYOUTS
from radcnn.data.manifest import Manifest
from radcnn.errors import ConfigError, DataError, ManifestError

log = logging.getLogger(__name__)

OBSERVATIONS = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
UNCERTAINTY_POLICIES = {"ones": 1.0, "zeros": 0.0, "ignore": np.nan}
BLANK_POLICIES = {"nan": np.nan, "zeros": 0.0}
VIEWS = ("all", "frontal", "lateral")
_SPLIT_FILES = {"train.csv": "train", "valid.csv": "val"}
_VALUES = {"1.0": 1.0, "1": 1.0, "0.0": 0.0, "0": 0.0, "-1.0": -1.0, "-1": -1.0}
_PATIENT = re.compile(r"(patient\d+)")
_STUDY = re.compile(r"(study\d+)")
_META = {"Sex": "sex", "Age": "age", "Frontal/Lateral": "view", "AP/PA": "projection"}


def _is_chexpert_csv(path: Path) -> bool:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError):
        return False
    return {"Path", "Frontal/Lateral"} <= set(header)


def _detect(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() == ".csv" and _is_chexpert_csv(path)
    return path.is_dir() and any(_is_chexpert_csv(path / name) for name in _SPLIT_FILES if (path / name).is_file())


@LAYOUTS.register(
    "chexpert",
    summary="CheXpert: train.csv/valid.csv, 14 observations with uncertain labels",
    detect=_detect,
    priority=20,
)
def load_chexpert(
    source: str | Path,
    *,
    on_error: str = "fail",
    check_files: bool = True,
    uncertainty: str = "ignore",
    blank: str = "nan",
    views: str = "all",
    labels: tuple[str, ...] | str | None = None,
) -> Manifest:
    """Load CheXpert (see the module docstring for the label policies)."""
    if uncertainty not in UNCERTAINTY_POLICIES:
        raise ConfigError(f"uncertainty must be one of {', '.join(UNCERTAINTY_POLICIES)}, got {uncertainty!r}")
    if blank not in BLANK_POLICIES:
        raise ConfigError(f"blank must be one of {', '.join(BLANK_POLICIES)}, got {blank!r}")
    if views not in VIEWS:
        raise ConfigError(f"views must be one of {', '.join(VIEWS)}, got {views!r}")
    source = Path(source)
    if source.is_file():
        files, root = [source], source.parent
    else:
        files, root = [source / n for n in _SPLIT_FILES if (source / n).is_file()], source
    if not files:
        raise DataError(f"{source}: no train.csv or valid.csv (the CheXpert label files)")
    label_names = select_labels(OBSERVATIONS, labels, files[0])
    problems = Problems(on_error)
    rows: list[dict] = []
    seen: set[str] = set()
    for csv_path in files:
        rows += _read_file(csv_path, root.resolve(), _SPLIT_FILES.get(csv_path.name, ""), problems, seen, check_files)
    if not rows:
        raise DataError(f"{source}: no usable rows")
    table = pd.DataFrame(rows)
    for name in OBSERVATIONS:
        values = table[name].to_numpy(dtype=np.float32)
        # Blanks first (they are NaN now), then -1: "ignore" turns -1 into NaN, which must not become a blank 0.
        values[np.isnan(values)] = BLANK_POLICIES[blank]
        values[values == -1.0] = UNCERTAINTY_POLICIES[uncertainty]
        table[name] = values
    if views != "all":
        keep = table["view"].str.lower() == views
        log.info("%s: kept %d of %d images with view %s", source, int(keep.sum()), len(table), views)
        table = table[keep].reset_index(drop=True)
    table["dataset"] = "chexpert"
    columns = ["path", "patient_id", *OBSERVATIONS, "study", "view", "projection", "sex", "age", "split", "dataset"]
    return Manifest(table[columns], label_names, source, problems.skipped)


def _read_file(
    csv_path: Path, root: Path, split: str, problems: Problems, seen: set[str], check_files: bool
) -> list[dict]:
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ManifestError(csv_path, f"not a readable CSV file ({exc})") from None
    for column in ("Path", *_META, *OBSERVATIONS):
        if column not in table.columns:
            raise ManifestError(csv_path, f"missing column; the file has: {', '.join(table.columns)}", column=column)
    rows = []
    names = ["Path", *_META, *OBSERVATIONS]
    # Plain lists and string paths: per-row pandas access and Path.resolve() dominate the time at 200k rows.
    records = (
        dict(zip(names, values, strict=True)) for values in zip(*(table[c].tolist() for c in names), strict=True)
    )
    for i, record in enumerate(records):
        row_number = i + 2
        rel = record["Path"].strip()
        patient, study = _PATIENT.search(rel), _STUDY.search(rel)
        if not rel or patient is None:
            problems.report(csv_path, f"cannot find patientNNNNN in path {rel!r}", row=row_number, column="Path")
            continue
        if rel in seen:
            problems.report(csv_path, f"duplicate row: image {rel} is listed already", row=row_number, column="Path")
            continue
        seen.add(rel)
        labels = _parse_labels(record, csv_path, row_number, problems)
        if labels is None:
            continue
        path = _resolve(root, rel)
        if check_files and not os.path.isfile(path):
            problems.report(csv_path, f"image file not found: {path}", row=row_number, column="Path")
            continue
        row = {"path": path, "patient_id": patient.group(1), "split": split, **labels}
        row["study"] = f"{patient.group(1)}/{study.group(1)}" if study else patient.group(1)
        row.update({name: record[column].strip() for column, name in _META.items()})
        row["age"] = float(row["age"]) if row["age"].replace(".", "", 1).isdigit() else float("nan")
        rows.append(row)
    return rows


def _parse_labels(record: dict, csv_path: Path, row_number: int, problems: Problems) -> dict | None:
    """Raw values: 1, 0, -1 (uncertain) and NaN (blank); the load function applies the policies."""
    labels = {}
    for name in OBSERVATIONS:
        text = record[name].strip()
        if text == "":
            labels[name] = np.nan
        elif text in _VALUES:
            labels[name] = _VALUES[text]
        else:
            problems.report(
                csv_path,
                f"label value {text!r} outside the allowed set 1.0, 0.0, -1.0, blank",
                row=row_number,
                column=name,
            )
            return None
    return labels


def _resolve(root: Path, rel: str) -> str:
    """CSV paths begin with the release folder name; anchor them at `root` (already resolved) instead, whatever it
    is called."""
    parts = [p for p in rel.replace("\\", "/").split("/") if p and p != "."]
    if parts and (parts[0] == root.name or parts[0].startswith("CheXpert-v1.0")):
        parts = parts[1:]
    return os.path.normpath(os.path.join(root, *parts))
