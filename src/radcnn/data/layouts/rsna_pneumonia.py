"""RSNA Pneumonia Detection Challenge — DICOM chest radiographs with pneumonia (lung opacity) boxes.

Dataset card
------------
Source:   Radiological Society of North America with the Society of Thoracic Radiology and MD.ai, Kaggle
          competition "rsna-pneumonia-detection-challenge" (2018); images are a subset of NIH ChestX-ray14,
          re-annotated by radiologists.
Size:     stage 2 train: 26,684 DICOM images (1024×1024, MONOCHROME2), 9,555 with pneumonia (Target 1), 6,012
          of them with more than one box; stage 2 test: 3,000 images without labels (not loaded).
Labels:   one binary label, ``Pneumonia`` (the challenge's Target: evidence of pneumonia as lung opacity), plus
          the boxes (x, y, width, height in pixels) as JSON in ``bboxes``. Optional
          ``stage_2_detailed_class_info.csv`` → ``class`` (Normal / No Lung Opacity / Not Normal / Lung Opacity).
Licence:  Kaggle competition rules: non-commercial research and education; NIH images under the NIH terms.
Citation: Shih et al., "Augmenting the National Institutes of Health Chest Radiograph Dataset with Expert
          Annotations of Possible Pneumonia", Radiology: Artificial Intelligence 1(1):e180041 (2019).
Layout::

    rsna-pneumonia-detection-challenge/    <- pass this folder (or the labels CSV itself)
      stage_2_train_labels.csv             patientId,x,y,width,height,Target (one row per box; one row with
                                           blank box columns and Target 0 for images without pneumonia)
      stage_2_detailed_class_info.csv      optional
      stage_2_train_images/<patientId>.dcm

(stage_1_* names are accepted too.) Several rows of one patientId become one image row with a list of boxes. The
``patientId`` is per image: the challenge anonymised each image separately, so patient-level grouping is
image-level here — follow-ups of one NIH patient cannot be recognised. ``read_headers=True`` adds ``sex``, ``age``
and ``view`` from the DICOM headers (reads each file's header, not its pixels).

Bad rows (reported, ``on_error``): Target outside {0, 1}, Target 1 without a numeric box, Target 0 with a box,
an exact duplicate row, conflicting Targets for one patientId, a missing image file.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from radcnn.data.layouts.common import Problems, boxes_to_json
from radcnn.data.layouts.registry import LAYOUTS
from radcnn.data.manifest import Manifest
from radcnn.errors import DataError, ManifestError, MissingExtraError

log = logging.getLogger(__name__)

LABEL = "Pneumonia"
_LABEL_FILES = ("stage_2_train_labels.csv", "stage_1_train_labels.csv")
_COLUMNS = ("patientId", "x", "y", "width", "height", "Target")


def _detect(path: Path) -> bool:
    if path.is_file():
        return path.name in _LABEL_FILES
    return path.is_dir() and any((path / name).is_file() for name in _LABEL_FILES)


@LAYOUTS.register(
    "rsna_pneumonia",
    summary="RSNA Pneumonia Detection: stage_2_train_labels.csv + DICOMs, boxes",
    detect=_detect,
    priority=30,
)
def load_rsna_pneumonia(
    source: str | Path,
    *,
    on_error: str = "fail",
    check_files: bool = True,
    read_headers: bool = False,
) -> Manifest:
    """Load the RSNA Pneumonia Detection training set (see the module docstring)."""
    source = Path(source)
    labels_csv = (
        source if source.is_file() else next((source / n for n in _LABEL_FILES if (source / n).is_file()), None)
    )
    if labels_csv is None:
        raise DataError(f"{source}: no {' or '.join(_LABEL_FILES)} (the RSNA Pneumonia label file)")
    root = labels_csv.parent.resolve()
    stage = labels_csv.name.split("_train_labels")[0]  # "stage_2"
    image_dir = root / f"{stage}_train_images"
    problems = Problems(on_error)

    per_patient = _read_rows(labels_csv, problems)
    classes = _detailed_classes(root / f"{stage}_detailed_class_info.csv")
    rows = []
    for patient, entries in per_patient.items():
        targets = {target for _, target, _ in entries}
        if len(targets) > 1:
            numbers = ", ".join(str(r) for r, _, _ in entries)
            problems.report(
                labels_csv,
                f"conflicting Target values for patientId {patient} (rows {numbers})",
                row=entries[0][0],
                column="Target",
            )
            continue
        path = image_dir / f"{patient}.dcm"
        if check_files and not path.is_file():
            problems.report(labels_csv, f"image file not found: {path}", row=entries[0][0], column="patientId")
            continue
        boxes = [box for _, _, box in entries if box is not None]
        rows.append(
            {
                "path": str(path),
                "patient_id": patient,
                LABEL: np.float32(targets.pop()),
                "study": patient,
                "split": "train",
                "bboxes": boxes_to_json(boxes),
                "n_boxes": len(boxes),
                "class": classes.get(patient, ""),
                "dataset": "rsna_pneumonia",
            }
        )
    if not rows:
        raise DataError(f"{labels_csv}: no usable rows")
    table = pd.DataFrame(rows)
    if read_headers:
        table = _add_header_fields(table, problems)
    return Manifest(table, (LABEL,), labels_csv, problems.skipped)


def _read_rows(labels_csv: Path, problems: Problems) -> dict[str, list[tuple[int, int, dict | None]]]:
    """patientId → [(CSV row, Target, box or None)], every row checked."""
    try:
        table = pd.read_csv(labels_csv, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ManifestError(labels_csv, f"not a readable CSV file ({exc})") from None
    for column in _COLUMNS:
        if column not in table.columns:
            raise ManifestError(labels_csv, f"missing column; the file has: {', '.join(table.columns)}", column=column)
    per_patient: dict[str, list[tuple[int, int, dict | None]]] = {}
    seen: set[tuple[str, ...]] = set()
    for i, record in enumerate(table[list(_COLUMNS)].itertuples(index=False)):
        row_number = i + 2
        patient, target = record.patientId.strip(), record.Target.strip()
        coords = tuple(v.strip() for v in (record.x, record.y, record.width, record.height))
        if not patient:
            problems.report(labels_csv, "empty patientId", row=row_number, column="patientId")
            continue
        if target not in ("0", "1"):
            problems.report(
                labels_csv, f"Target {target!r} outside the allowed set 0, 1", row=row_number, column="Target"
            )
            continue
        key = (patient, target, *coords)
        if key in seen:
            problems.report(
                labels_csv, f"duplicate row: patientId {patient} with the same values is listed already", row=row_number
            )
            continue
        seen.add(key)
        box = _parse_box(coords, int(target), labels_csv, row_number, problems)
        if box is False:
            continue
        per_patient.setdefault(patient, []).append((row_number, int(target), box))
    return per_patient


def _parse_box(coords: tuple[str, ...], target: int, labels_csv: Path, row_number: int, problems: Problems):
    """The box of one row; None for a Target-0 row; False when the row is bad (already reported)."""
    if target == 0:
        if any(coords):
            problems.report(labels_csv, f"Target 0 with a box {coords}", row=row_number, column="Target")
            return False
        return None
    try:
        x, y, w, h = (float(v) for v in coords)
    except ValueError:
        problems.report(labels_csv, f"Target 1 needs a numeric box, got {coords}", row=row_number, column="x")
        return False
    if w <= 0 or h <= 0:
        problems.report(labels_csv, f"box with non-positive size width={w}, height={h}", row=row_number, column="width")
        return False
    return {"label": LABEL, "x": x, "y": y, "w": w, "h": h}


def _detailed_classes(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    if not {"patientId", "class"} <= set(table.columns):
        raise ManifestError(path, "expected the columns patientId and class")
    return dict(zip(table["patientId"].str.strip(), table["class"].str.strip(), strict=True))


def _add_header_fields(table: pd.DataFrame, problems: Problems) -> pd.DataFrame:
    try:
        import pydicom
        from pydicom.errors import InvalidDicomError
    except ImportError:
        raise MissingExtraError("pydicom", "dicom") from None
    fields = {"sex": "PatientSex", "age": "PatientAge", "view": "ViewPosition"}
    values: dict[str, list] = {name: [] for name in fields}
    keep = []
    for path in table["path"]:
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(fields.values()))
        except (InvalidDicomError, OSError, ValueError) as exc:
            problems.report(path, f"unreadable DICOM header: {exc}")
            keep.append(False)
            continue
        keep.append(True)
        for name, keyword in fields.items():
            values[name].append(str(getattr(header, keyword, "")).strip())
    table = table[np.array(keep, dtype=bool)].reset_index(drop=True)
    for name, column in values.items():
        table[name] = column
    table["age"] = pd.to_numeric(table["age"].str.upper().str.rstrip("Y"), errors="coerce")
    return table
