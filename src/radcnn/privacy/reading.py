"""Reading DICOM for de-identification, and telling a damaged DICOM file from a file that is not DICOM at all.

pydicom reads leniently: a file cut off in the middle of an element, or in the middle of encapsulated pixel
data, often comes back as a dataset with a short last value and no error. Writing such a dataset out would
produce a "de-identified" file that is still corrupt, so `check_integrity` compares every top-level element's
declared length with what was read, the native pixel data with the size Rows x Columns x frames x samples x bits
needs, and walks the fragment items of encapsulated pixel data. A damaged file raises `DamagedDicomError`
(quarantined with the reason by the tree runner); a file that is not DICOM raises `DeidentificationError`.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from radcnn.errors import DeidentificationError

DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
PIXEL_DATA = 0x7FE00010
_UNDEFINED = 0xFFFFFFFF
_NATIVE_SYNTAXES = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", ""})


class DamagedDicomError(DeidentificationError):
    """A DICOM file (DICM prefix or SOP Class UID present) that is truncated or cannot be decoded."""


def has_dicm_prefix(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def _looks_headerless(path: Path) -> bool:
    """A DICOM data set without preamble starts with a group 0002, 0008 (or 0010 ...) tag: a cheap test that
    spares notes and thumbnails a forced parse (and pydicom's warnings about them)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError:
        return False
    return len(head) == 4 and struct.unpack("<H", head[:2])[0] in (0x0002, 0x0008, 0x0010)


def read_dicom(path: Path) -> Dataset:
    """Read a DICOM file (with or without the 128-byte preamble) and check it is complete.

    Not DICOM: DeidentificationError. DICOM but truncated or unparseable: DamagedDicomError."""
    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError:
        if not _looks_headerless(path):
            raise DeidentificationError(
                f"{path}: not a DICOM file (no DICM prefix, no data set at the start)"
            ) from None
        try:
            ds = pydicom.dcmread(path, force=True)
            has_class = "SOPClassUID" in ds
        except Exception as exc:  # a forced read of a non-DICOM file fails in many ways
            raise DeidentificationError(f"{path}: not a DICOM file ({type(exc).__name__})") from exc
        if not has_class:
            raise DeidentificationError(f"{path}: not a DICOM file (no DICM prefix, no SOP Class UID)") from None
    except Exception as exc:  # pydicom raises OSError, IndexError, struct.error ... on cut-off files
        if has_dicm_prefix(path):
            raise DamagedDicomError(f"{path}: truncated or corrupt DICOM ({type(exc).__name__}: {exc})") from exc
        raise DeidentificationError(f"{path}: cannot be read as DICOM: {type(exc).__name__}: {exc}") from exc
    sop_class = ds.file_meta.get("MediaStorageSOPClassUID", "") if hasattr(ds, "file_meta") else ""
    if sop_class == DICOMDIR_SOP_CLASS or "DirectoryRecordSequence" in ds:
        raise DeidentificationError(f"{path}: DICOMDIR files are not de-identified; rebuild the DICOMDIR afterwards")
    meta_class = ds.file_meta.get("MediaStorageSOPClassUID") if hasattr(ds, "file_meta") else None
    if meta_class and "SOPClassUID" not in ds and "SOPInstanceUID" not in ds:
        raise DamagedDicomError(f"{path}: truncated: the file meta names an object but the data set is missing")
    check_integrity(ds, where=str(path))
    return ds


def check_integrity(ds: Dataset, *, where: str) -> None:
    """Raise DamagedDicomError when `ds` was read from a truncated file (see the module docstring)."""
    for tag in list(ds.keys()):
        raw = ds.get_item(tag)
        length = getattr(raw, "length", None)
        value = getattr(raw, "value", None)
        if isinstance(value, bytes) and length not in (None, _UNDEFINED) and len(value) < length:
            raise DamagedDicomError(f"{where}: truncated: element {tag} has {len(value)} of {length} bytes")
    if PIXEL_DATA not in ds:
        if "Rows" in ds and "Columns" in ds and "BitsAllocated" in ds:
            raise DamagedDicomError(f"{where}: image attributes but no Pixel Data (truncated file?)")
        return
    raw = ds.get_item(PIXEL_DATA)
    data = raw.value if isinstance(getattr(raw, "value", None), bytes) else ds.PixelData
    syntax = str(ds.file_meta.get("TransferSyntaxUID", "")) if hasattr(ds, "file_meta") else ""
    if syntax in _NATIVE_SYNTAXES:
        expected = native_pixel_bytes(ds)
        if expected is not None and len(data) < expected:
            raise DamagedDicomError(f"{where}: pixel data truncated: {len(data)} of {expected} bytes")
        return
    _check_fragments(data, where)


def native_pixel_bytes(ds: Dataset) -> int | None:
    try:
        rows, cols, bits = int(ds.Rows), int(ds.Columns), int(ds.BitsAllocated)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
    except (AttributeError, TypeError, ValueError):  # malformed size attributes: pixel decoding will say more
        return None
    total_bits = rows * cols * frames * samples * bits
    return (total_bits + 7) // 8


def _check_fragments(data: bytes, where: str) -> None:
    """Walk the items of encapsulated pixel data (PS3.5 A.4): offset table, then at least one fragment."""
    pos, items = 0, 0
    while pos + 8 <= len(data):
        group, element, length = struct.unpack_from("<HHL", data, pos)
        if (group, element) == (0xFFFE, 0xE0DD):
            break
        if (group, element) != (0xFFFE, 0xE000):
            raise DamagedDicomError(f"{where}: encapsulated pixel data: unexpected tag at byte {pos}")
        if pos + 8 + length > len(data):
            raise DamagedDicomError(
                f"{where}: encapsulated pixel data truncated: item {items} needs {length} bytes, "
                f"{len(data) - pos - 8} left"
            )
        pos, items = pos + 8 + length, items + 1
    if items < 2:
        raise DamagedDicomError(f"{where}: encapsulated pixel data holds no fragment (truncated file?)")
