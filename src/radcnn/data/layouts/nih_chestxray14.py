"""NIH ChestX-ray14 — 112,120 frontal chest radiographs with 14 text-mined finding labels.

Dataset card
------------
Source:   NIH Clinical Center, https://nihcc.app.box.com/v/ChestXray-NIHCC (also on Kaggle as "NIH Chest X-rays").
Size:     112,120 PNG images (1024×1024, 8-bit) of 30,805 patients; 984 boxes on 880 images (BBox_List_2017.csv).
Labels:   14 findings, multi-label, text-mined from reports (expected accuracy > 90%): Atelectasis, Cardiomegaly,
          Effusion, Infiltration, Mass, Nodule, Pneumonia, Pneumothorax, Consolidation, Edema, Emphysema, Fibrosis,
          Pleural_Thickening, Hernia. "Finding Labels" is pipe-separated ("Cardiomegaly|Effusion"); "No Finding"
          is a 15th column (1 when the image has none of the 14). Every label is known: no NaN.
Licence:  "no restrictions on the use of the NIH chest x-ray images" (NIH Clinical Center release notes);
          acknowledge the NIH Clinical Center and cite the paper.
Citation: Wang et al., "ChestX-ray8: Hospital-scale Chest X-ray Database and Benchmarks on Weakly-Supervised
          Classification and Localization of Common Thorax Diseases", CVPR 2017.
Layout::

    NIH/                               <- pass this folder (or the Data_Entry CSV itself)
      Data_Entry_2017_v2020.csv        (or Data_Entry_2017.csv; the newest is used when both are there)
      BBox_List_2017.csv               optional: boxes, attached per image as JSON in ``bboxes``
      train_val_list.txt test_list.txt optional: the official patient-level split → ``split`` (train/test)
      images_001/images/00000001_000.png ... images_012/...   (or images/*.png)

Columns: ``path``, ``patient_id`` (Patient ID), the 14 findings and "No Finding" (0/1), ``study`` (the image name
without suffix: one follow-up), ``follow_up`` (Follow-up #), ``view`` (View Position, PA/AP), ``sex``, ``age``
(years; the 2017 file's "058Y" is read as 58), ``split``, ``bboxes``, ``dataset``. ``labels`` picks the label
columns (default the 14 findings; "No Finding" may be added); ``views`` keeps only the given View Positions.
Box labels use the Data_Entry spelling ("Infiltrate" in the box file → Infiltration).
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from radcnn.data.layouts.common import Problems, boxes_to_json, index_images, select_labels
from radcnn.data.layouts.registry import LAYOUTS
from radcnn.data.manifest import Manifest
from radcnn.errors import DataError, ManifestError

log = logging.getLogger(__name__)

FINDINGS = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
)
NO_FINDING = "No Finding"
BOX_LABEL_ALIASES = {"Infiltrate": "Infiltration"}
_COLUMNS = {
    "Image Index": "image",
    "Finding Labels": "findings",
    "Follow-up #": "follow_up",
    "Patient ID": "patient",
    "Patient Age": "age",
    "Patient Gender": "sex",
    "View Position": "view",
}


def _detect(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() == ".csv" and {"Image Index", "Finding Labels"} <= set(_header(path))
    return path.is_dir() and any(path.glob("Data_Entry_2017*.csv"))


def _header(path: Path) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return [c.strip() for c in next(csv.reader(handle), [])]
    except (OSError, UnicodeDecodeError):
        return []


@LAYOUTS.register(
    "nih_chestxray14",
    summary="NIH ChestX-ray14: Data_Entry_2017*.csv + images*/ (14 findings)",
    detect=_detect,
    priority=10,
)
def load_nih_chestxray14(
    source: str | Path,
    *,
    on_error: str = "fail",
    check_files: bool = True,
    labels: tuple[str, ...] | str | None = None,
    views: tuple[str, ...] | str | None = None,
) -> Manifest:
    """Load NIH ChestX-ray14 (see the module docstring)."""
    source = Path(source)
    entry_csv = source if source.is_file() else _newest_entry_file(source)
    root = entry_csv.parent.resolve()  # once: resolving each of 112k image paths would dominate the load time
    problems = Problems(on_error)
    # Default: the 14 findings; "No Finding" is a column of the table and may be asked for.
    label_names = FINDINGS if labels is None else select_labels((*FINDINGS, NO_FINDING), labels, entry_csv)

    entries = _read_entries(entry_csv)
    images = index_images(sorted(p for p in root.glob("images*") if p.is_dir()), problems) if check_files else {}
    rows, seen = [], set()
    for i, entry in enumerate(entries.itertuples(index=False)):
        row_number = i + 2
        row = _parse_entry(entry, entry_csv, row_number, problems, seen)
        if row is None:
            continue
        path = images.get(row["image"])
        if path is None and check_files:
            problems.report(
                entry_csv,
                f"image file not found: {row['image']} (looked in images*/ under {root})",
                row=row_number,
                column="Image Index",
            )
            continue
        row["path"] = str(path) if path is not None else os.path.join(root, "images", row["image"])
        rows.append(row)
    if not rows:
        raise DataError(f"{entry_csv}: no usable rows")
    table = pd.DataFrame(rows)
    table[[*FINDINGS, NO_FINDING]] = table[[*FINDINGS, NO_FINDING]].astype(np.float32)

    if views is not None:
        wanted = {views} if isinstance(views, str) else set(views)
        keep = table["view"].isin(wanted)
        log.info("%s: kept %d of %d images with view %s", entry_csv, int(keep.sum()), len(table), sorted(wanted))
        table = table[keep].reset_index(drop=True)
    table["split"] = _official_split(root, table["image"], problems)
    table["bboxes"] = _boxes(root / "BBox_List_2017.csv", table["image"], set(entries["image"]), problems)
    table["dataset"] = "nih_chestxray14"
    columns = [
        "path",
        "patient_id",
        *FINDINGS,
        NO_FINDING,
        "study",
        "follow_up",
        "view",
        "sex",
        "age",
        "split",
        "bboxes",
        "dataset",
    ]
    return Manifest(table[columns], label_names, entry_csv, problems.skipped)


def _newest_entry_file(root: Path) -> Path:
    candidates = sorted(root.glob("Data_Entry_2017*.csv"))
    if not candidates:
        raise DataError(f"{root}: no Data_Entry_2017*.csv (the NIH ChestX-ray14 label file)")
    if len(candidates) > 1:
        log.info("%s: several label files %s; using %s", root, [c.name for c in candidates], candidates[-1].name)
    return candidates[-1]


def _read_entries(entry_csv: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(entry_csv, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ManifestError(entry_csv, f"not a readable CSV file ({exc})") from None
    table.columns = [c.strip() for c in table.columns]
    for column in _COLUMNS:
        if column not in table.columns:
            raise ManifestError(entry_csv, f"missing column; the file has: {', '.join(table.columns)}", column=column)
    return table[list(_COLUMNS)].rename(columns=_COLUMNS)


def _parse_entry(entry, entry_csv: Path, row_number: int, problems: Problems, seen: set[str]) -> dict | None:
    image, patient = entry.image.strip(), entry.patient.strip()
    for value, column in ((image, "Image Index"), (patient, "Patient ID")):
        if not value:
            problems.report(entry_csv, f"empty {column}", row=row_number, column=column)
            return None
    if image in seen:
        problems.report(
            entry_csv, f"duplicate row: image {image} is listed already", row=row_number, column="Image Index"
        )
        return None
    seen.add(image)
    findings = [f.strip() for f in entry.findings.split("|") if f.strip()]
    unknown = [f for f in findings if f not in FINDINGS and f != NO_FINDING]
    if unknown or not findings:
        problems.report(
            entry_csv,
            f"unknown finding(s) {unknown or ['(empty)']}; expected {NO_FINDING!r} or some of {', '.join(FINDINGS)}",
            row=row_number,
            column="Finding Labels",
        )
        return None
    if NO_FINDING in findings and len(findings) > 1:
        problems.report(
            entry_csv, f"{NO_FINDING!r} together with findings {findings}", row=row_number, column="Finding Labels"
        )
        return None
    row = {"image": image, "patient_id": patient, "study": image.rsplit(".", 1)[0]}
    present = set(findings)
    for name in (*FINDINGS, NO_FINDING):
        row[name] = 1.0 if name in present else 0.0  # plain floats here; one float32 cast per column later
    row["follow_up"] = _number(entry.follow_up)
    row["view"], row["sex"] = entry.view.strip(), entry.sex.strip()
    row["age"] = _number(entry.age.strip().upper().removesuffix("Y"))  # the 2017 file writes "058Y"
    return row


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _official_split(root: Path, images: pd.Series, problems: Problems) -> list[str]:
    lists = {"train": root / "train_val_list.txt", "test": root / "test_list.txt"}
    membership: dict[str, str] = {}
    for split, path in lists.items():
        if not path.is_file():
            continue
        for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            name = line.strip()
            if not name:
                continue
            if name in membership and membership[name] != split:
                problems.report(path, f"image {name} is in both train_val_list.txt and test_list.txt", row=line_number)
                continue
            membership[name] = split
    if membership:
        outside = int((~images.isin(membership)).sum())
        if outside:
            log.info("%s: %d image(s) are in neither official split list; split left blank", root, outside)
    return [membership.get(name, "") for name in images]


def _boxes(bbox_csv: Path, images: pd.Series, listed: set[str], problems: Problems) -> list[str]:
    """JSON boxes per image. The box file's header is misaligned (6 names, 9 fields), so it is read by position."""
    per_image: dict[str, list[dict]] = {}
    if bbox_csv.is_file():
        with open(bbox_csv, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader, [])
            if not header or header[0].strip() != "Image Index":
                raise ManifestError(bbox_csv, "expected the NIH box file header starting with 'Image Index'", row=1)
            for row_number, fields in enumerate(reader, start=2):
                box = _parse_box(fields, bbox_csv, row_number, listed, problems)
                if box is not None:
                    per_image.setdefault(box.pop("image"), []).append(box)
    return [boxes_to_json(per_image.get(name, [])) for name in images]


def _parse_box(fields: list[str], bbox_csv: Path, row_number: int, listed: set[str], problems: Problems) -> dict | None:
    if len(fields) < 6:
        problems.report(bbox_csv, f"expected 6 fields (image, label, x, y, w, h), got {len(fields)}", row=row_number)
        return None
    image, label = fields[0].strip(), fields[1].strip()
    label = BOX_LABEL_ALIASES.get(label, label)
    try:
        x, y, w, h = (float(v) for v in fields[2:6])
    except ValueError:
        problems.report(bbox_csv, f"box coordinates are not numbers: {fields[2:6]}", row=row_number)
        return None
    if label not in FINDINGS:
        problems.report(
            bbox_csv, f"unknown box label {fields[1]!r}; expected one of {', '.join(FINDINGS)}", row=row_number
        )
        return None
    if image not in listed:
        problems.report(bbox_csv, f"box for image {image}, which the Data_Entry file does not list", row=row_number)
        return None
    if w <= 0 or h <= 0:
        problems.report(bbox_csv, f"box with non-positive size w={w}, h={h}", row=row_number)
        return None
    return {"image": image, "label": label, "x": x, "y": y, "w": w, "h": h}
