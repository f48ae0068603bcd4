"""DICOM folder — a PACS export as hospitals hand it over: DICOM files in nested folders, no labels.

Dataset card
------------
Source:   a PACS or modality export (C-MOVE to a folder, a CD/DVD with DICOMDIR, a research export).
Size:     any.
Labels:   none. A folder like this can be inspected (`radcnn data inspect`), de-identified (`radcnn deid`) and
          predicted on (`radcnn predict`); training needs labels: add a labels CSV (layout ``csv``).
Licence:  the data owner's; radcnn reads the files in place and copies nothing.
Citation: —
Layout::

    export/                                  <- pass this folder
      DICOMDIR                               <- optional media directory: recognised, not an image
      PX000001/20240312/1.2.840.../IM0001    <- file names without suffixes are common; content decides
      PX000001/20240312/1.2.840.../IM0002
      Thumbs.db, README.txt                  <- not DICOM: listed as problems, never read as images

One row per DICOM file, with what the header says: patient_id (PatientID, else the top folder), study
(StudyInstanceUID), series (SeriesInstanceUID), modality, view (ViewPosition), body_part, rows × columns, frames and
the transfer syntax. Headers are read without the pixel data; a file whose (uncompressed) pixel data is shorter than
its header promises is reported as truncated. Every file that is not a readable DICOM image goes through
``on_error`` with the reason.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd

from radcnn.data.layouts.common import Problems, walk_files
from radcnn.data.layouts.registry import LAYOUTS
from radcnn.data.manifest import Manifest
from radcnn.errors import DataError

log = logging.getLogger(__name__)

_IGNORED_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}
_SAMPLE = 50  # files looked at by detection
# Media Storage Directory (DICOMDIR) and other objects that hold no image of their own.
_NOT_IMAGES = {"1.2.840.10008.1.3.10": "DICOMDIR (media directory)", "1.2.840.10008.5.1.4.1.1.88.11": "SR document"}


def is_dicom_file(path: Path) -> bool:
    """DICOM by content: the "DICM" marker after the 128-byte preamble (suffixes are often absent in exports)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


_UID = re.compile(r"\d+(\.\d+)+")


def _detect(path: Path) -> bool:
    """A folder whose files are DICOM by content, laid out as an export rather than as class folders: a DICOMDIR,
    files without an image suffix, files directly in the folder, folders nested three or more deep, or folders named
    by DICOM UIDs (the `STUDY_UID/SERIES_UID/SOP_UID.dcm` tree `radcnn deid` writes: a UID is never a class name)."""
    if not path.is_dir():
        return False
    if (path / "DICOMDIR").is_file():
        return True
    seen = dicom = 0
    export_like = False
    for file in walk_files(path):
        if file.name.lower() in _IGNORED_NAMES or file.name.startswith("."):
            continue
        seen += 1
        if is_dicom_file(file):
            dicom += 1
            depth = len(file.relative_to(path).parts)
            export_like |= file.suffix.lower() not in (".dcm", ".dicom", ".dic", ".ima") or depth == 1 or depth >= 4
            export_like |= depth >= 2 and _UID.fullmatch(file.parent.name) is not None
        if seen >= _SAMPLE:
            break
    return dicom > 0 and dicom >= seen // 2 and export_like


@LAYOUTS.register(
    "dicom_folder",
    summary="A PACS export: DICOM files in nested folders (with or without suffixes, DICOMDIR), no labels",
    detect=_detect,
    priority=85,
)
def load_dicom_folder(source: str | Path, *, on_error: str = "fail", check_files: bool = True) -> Manifest:
    """One row per DICOM image file under `source` (see the module docstring). `check_files` is accepted for a
    uniform signature: every row comes from a file that was just read."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    root = Path(source)
    if not root.is_dir():
        raise DataError(f"{root}: the dicom_folder layout needs a folder")
    problems = Problems(on_error)
    rows = []
    for file in walk_files(root.resolve()):
        if file.name.lower() in _IGNORED_NAMES or file.name.startswith("."):
            problems.note(str(file), "system file (e.g. Thumbs.db, .DS_Store): not part of the export")
            continue
        try:
            # defer_size: the header is parsed, the pixel data only located (its offset is checked for truncation)
            dataset = pydicom.dcmread(file, defer_size=1024)
        except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError) as exc:
            problems.report(file, f"not a readable DICOM file ({type(exc).__name__}: {exc})")
            continue
        reason = _not_an_image(file, dataset)
        if reason:
            (problems.note if reason.startswith(("DICOMDIR", "SR")) else problems.report)(str(file), reason)
            continue
        rows.append(_row(root, file, dataset))
    if not rows:
        raise DataError(f"{root}: no readable DICOM image files found ({len(problems.items)} other file(s))")
    table = pd.DataFrame(rows)
    return Manifest(table, (), root, problems.skipped)


def _not_an_image(path: Path, dataset) -> str:
    """Why a readable DICOM file cannot be used as an image ("" when it can)."""
    sop_class = str(dataset.get("SOPClassUID", ""))
    if sop_class in _NOT_IMAGES:
        return f"{_NOT_IMAGES[sop_class]}: holds no image"
    if "Rows" not in dataset or "Columns" not in dataset:
        return "no image: the header has no Rows/Columns (no pixel data)"
    return _truncation(path, dataset)


def _truncation(path: Path, dataset) -> str:
    """For uncompressed pixel data: compare what the header promises with what the file holds."""
    syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is None or syntax.is_compressed:
        return ""  # encapsulated frames have no fixed length; decoding reports their problems
    # The raw element of a deferred value still knows where its bytes start (`get_item` would convert it).
    element = dataset._dict.get(0x7FE00010)
    if element is None:
        return "no pixel data (7FE0,0010) although the header describes an image"
    bits = int(dataset.get("BitsAllocated", 16))
    expected = (
        int(dataset.Rows)
        * int(dataset.Columns)
        * int(dataset.get("SamplesPerPixel", 1))
        * int(dataset.get("NumberOfFrames", 1) or 1)
        * bits
        // 8
    )
    tell = getattr(element, "value_tell", None)
    available = path.stat().st_size - tell if tell is not None else expected
    if available < expected:
        return f"truncated: the pixel data holds {max(available, 0)} of the {expected} bytes the header describes"
    return ""


def _row(root: Path, path: Path, dataset) -> dict:
    rel = path.relative_to(root.resolve())
    syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
    return {
        "path": str(path),
        "patient_id": str(dataset.get("PatientID", "") or rel.parts[0]),
        "study": str(dataset.get("StudyInstanceUID", "")),
        "series": str(dataset.get("SeriesInstanceUID", "")),
        "modality": str(dataset.get("Modality", "")),
        "view": str(dataset.get("ViewPosition", "")),
        "body_part": str(dataset.get("BodyPartExamined", "")),
        "size": f"{int(dataset.Rows)}×{int(dataset.Columns)}",
        "frames": int(dataset.get("NumberOfFrames", 1) or 1),
        "transfer_syntax": syntax.name if syntax is not None else "(no file meta)",
    }
