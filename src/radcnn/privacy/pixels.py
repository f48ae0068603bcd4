"""Burned-in annotation: which images may carry identifying text in their pixels, and blanking rectangles.

Header de-identification cannot remove a name that is part of the image. radcnn therefore flags an image when

* Burned In Annotation (0028,0301) is YES;
* its modality or SOP class is one whose images routinely carry text (ultrasound, secondary capture, scanned
  documents, photographs, endoscopy) whatever the header claims;
* it is a projection radiograph (CR, DX, MG, IO, PX, RF, XA) that does not state Burned In Annotation = NO:
  many CR/DX systems burn patient labels into the image, and the attribute is optional for CR;
* its manufacturer or model matches a name the user listed as known to burn text.

A flagged image is refused by default. Blanking fills user-given rectangles (the same region on every frame)
with the darkest display value and stores the pixels uncompressed; the user vouches that the rectangles cover
the text, which is what the Clean Pixel Data Option code then asserts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
from pydicom.dataset import Dataset

from radcnn.errors import DeidentificationError
from radcnn.privacy.config import Rectangle
from radcnn.privacy.reading import DamagedDicomError

logger = logging.getLogger(__name__)

TEXT_MODALITIES = {
    "US": "ultrasound images routinely carry burned-in patient text",
    "SC": "secondary captures are often screenshots with patient text",
    "OT": "'other' modality images are often screenshots or scans",
    "XC": "external-camera photographs may show faces or labels",
    "ES": "endoscopy frames often carry burned-in patient text",
    "GM": "general microscopy images may show slide labels",
    "DOC": "scanned documents carry identifying text",
}
RADIOGRAPHY_MODALITIES = frozenset({"CR", "DX", "MG", "IO", "PX", "RF", "XA"})
SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"


def has_pixels(ds: Dataset) -> bool:
    return "PixelData" in ds or "FloatPixelData" in ds or "DoubleFloatPixelData" in ds


def burned_in_reasons(ds: Dataset, flag_manufacturers: Iterable[str] = ()) -> list[str]:
    """Why this image may carry identifying text in its pixels (empty when no rule fires or no pixels)."""
    if not has_pixels(ds):
        return []
    reasons = []
    burned = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    modality = str(ds.get("Modality", "") or "").strip().upper()
    sop_class = str(ds.get("SOPClassUID", "") or "")
    if burned == "YES":
        reasons.append("BurnedInAnnotation is YES")
    if modality in TEXT_MODALITIES:
        reasons.append(f"modality {modality}: {TEXT_MODALITIES[modality]}")
    if sop_class.startswith(SECONDARY_CAPTURE_PREFIX):
        reasons.append("secondary capture SOP class: often a screenshot with patient text")
    if modality in RADIOGRAPHY_MODALITIES and burned != "NO" and burned != "YES":
        reasons.append(f"modality {modality} without BurnedInAnnotation=NO: radiographs often carry burned-in labels")
    device = f"{ds.get('Manufacturer', '') or ''} {ds.get('ManufacturerModelName', '') or ''}".upper()
    for name in flag_manufacturers:
        if name.strip() and name.strip().upper() in device:
            reasons.append(f"manufacturer/model matches {name.strip()!r}, listed as burning in text")
    return reasons


def _dark_value(ds: Dataset, arr: np.ndarray) -> int:
    """The stored value that displays darkest: the minimum, except for MONOCHROME1 (inverted display)."""
    info = np.iinfo(arr.dtype)
    if str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        bits = int(ds.get("BitsStored", info.bits))
        signed = int(ds.get("PixelRepresentation", 0)) == 1
        return (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    if int(ds.get("PixelRepresentation", 0)) == 1:
        return -(1 << (int(ds.get("BitsStored", info.bits)) - 1))
    return 0


def decode_pixels(ds: Dataset, *, where: str) -> np.ndarray:
    """The stored pixel values (frames, rows, cols[, samples]) of an integer image, decoded from any syntax."""
    if ds.file_meta.get("TransferSyntaxUID") == "1.2.840.10008.1.2.2":
        raise DeidentificationError(f"{where}: cannot blank pixels of an explicit big-endian file")
    try:
        arr = ds.pixel_array.copy()
    except Exception as exc:  # pydicom raises many types for undecodable pixel data
        raise DamagedDicomError(f"{where}: pixel data cannot be decoded: {type(exc).__name__}: {exc}") from exc
    if arr.dtype.kind not in "iu":
        raise DeidentificationError(f"{where}: only integer pixel data can be blanked (got {arr.dtype})")
    return arr if int(ds.get("NumberOfFrames", 1) or 1) > 1 else arr[np.newaxis]


def store_blanked(ds: Dataset, frames: np.ndarray, mask: np.ndarray, *, where: str) -> int:
    """Set `mask` (rows x cols) to the darkest display value on every frame and store the pixels in `ds`.

    Compressed images are stored again as Explicit VR Little Endian (lossless, larger files); colour images in YBR
    colour spaces come back as RGB, which pydicom decodes them to. Sets BurnedInAnnotation=NO."""
    frames[:, mask] = _dark_value(ds, frames)
    arr = frames if int(ds.get("NumberOfFrames", 1) or 1) > 1 else frames[0]
    photometric = str(ds.PhotometricInterpretation)
    if int(ds.get("SamplesPerPixel", 1)) == 3:
        photometric = "RGB"  # pydicom's decoder converts YBR to RGB
    ds.set_pixel_data(arr, photometric, int(ds.BitsStored), generate_instance_uid=False)
    ds.BurnedInAnnotation = "NO"
    logger.debug("%s: blanked %d pixels per frame", where, int(mask.sum()))
    return int(mask.sum())


def blank_rectangles(ds: Dataset, rectangles: Iterable[Rectangle], *, where: str = "dataset") -> int:
    """Blank the rectangles on every frame in place; returns the number of pixels blanked per frame."""
    rectangles = list(rectangles)
    if not rectangles:
        raise DeidentificationError(f"{where}: no rectangles to blank")
    frames = decode_pixels(ds, where=where)
    rows, cols = int(ds.Rows), int(ds.Columns)
    mask = np.zeros((rows, cols), dtype=bool)
    for rect in rectangles:
        if rect.x0 >= cols or rect.y0 >= rows:
            raise DeidentificationError(f"{where}: rectangle {rect.as_text()} lies outside the {cols}x{rows} image")
        mask[rect.y0 : min(rect.y1, rows), rect.x0 : min(rect.x1, cols)] = True
    return store_blanked(ds, frames, mask, where=where)
