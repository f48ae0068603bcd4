"""DICOM reader (pydicom 3 + pylibjpeg): stored values → display values in [0, 1].

The order of operations follows the DICOM grayscale pipeline (PS3.4 N.2):

1. decode one frame (pydicom picks the plugin for the transfer syntax; pydicom already masks the bits above
   BitsStored for native data, so garbage in unused high bits — old overlay planes — never reaches us);
2. PixelPaddingValue (and PixelPaddingRangeLimit) are found on the *stored* values, before any LUT;
3. modality LUT: ModalityLUTSequence via ``pydicom.pixels.apply_modality_lut``, otherwise RescaleSlope /
   RescaleIntercept (top level, or the enhanced multi-frame functional groups), in float32;
4. VOI: the stored VOI LUT sequence or window (``window="stored"``), min..max of the non-padding values
   (``"full"``), or an explicit (center, width);
5. MONOCHROME1 is inverted *after* windowing so that dense = bright; padding pixels are then set to 0.

Colour data (RGB, YBR_*, PALETTE COLOR) is converted to its BT.601 luma with a warning; for colour the modality
and VOI steps do not apply, so "stored" scales by the nominal maximum 2**BitsStored - 1, as for PNG.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pydicom
from pydicom import uid
from pydicom.encaps import get_frame
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut, get_decoder, pixel_array

from radcnn.data.readers.codestream import codestream_size
from radcnn.data.readers.meta import MAX_PIXELS, ImageMeta, choose_frame
from radcnn.data.readers.reduced_decode import decode_reduced
from radcnn.data.readers.windowing import (
    Window,
    apply_full_range,
    apply_window,
    luma,
    require_finite,
    scale_nominal,
    window_problem,
)
from radcnn.errors import ImageReadError

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
_COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "PALETTE COLOR")
_ATTRIBUTES = {
    "patient_id": "PatientID",
    "study_uid": "StudyInstanceUID",
    "modality": "Modality",
    "view_position": "ViewPosition",
    "body_part": "BodyPartExamined",
    "sex": "PatientSex",
    "age": "PatientAge",
    "manufacturer": "Manufacturer",
    "institution": "InstitutionName",
}


def read_dicom(
    path: Path, data: bytes, *, window: Window, frame: int | None, target_size: tuple[int, int] | None = None
) -> tuple[np.ndarray, ImageMeta]:
    """Decode one DICOM file held in `data` (see the module docstring for the pipeline).

    With `target_size`, a JPEG 2000 frame may be decoded at a reduced resolution no smaller than it
    (:mod:`radcnn.data.readers.reduced_decode`).
    """

    notes: list[str] = []
    headerless = data[128:132] != b"DICM"
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=headerless)
    except InvalidDicomError as exc:
        raise ImageReadError(path, f"not a valid DICOM file: {exc}") from exc
    except Exception as exc:  # truncated/corrupt headers surface as many different exception types
        raise ImageReadError(path, f"corrupt DICOM header: {type(exc).__name__}: {exc}") from exc

    keyword = next((k for k in _PIXEL_KEYWORDS if k in ds), None)
    if keyword is None:
        sop = ds.get("SOPClassUID")
        what = f" ({sop.name})" if sop is not None and hasattr(sop, "name") else ""
        raise ImageReadError(
            path, f"no pixel data: the DICOM object{what} has no PixelData element (not an image, or cut short)"
        )
    if not ds[keyword].value:
        raise ImageReadError(path, f"no pixel data: the {keyword} element is empty")
    _ensure_transfer_syntax(path, ds, keyword, notes)
    n_frames = _number_of_frames(path, ds)
    index = choose_frame(path, frame, n_frames, notes)
    rows, cols = _int(path, ds, "Rows"), _int(path, ds, "Columns")
    samples = _int(path, ds, "SamplesPerPixel", default=1)
    if rows < 1 or cols < 1 or rows * cols * max(samples, 1) > MAX_PIXELS:
        raise ImageReadError(path, f"implausible image size Rows={rows} Columns={cols} SamplesPerPixel={samples}")
    photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    if photometric not in _MONOCHROME + _COLOUR and keyword == "PixelData":
        raise ImageReadError(path, f"unsupported PhotometricInterpretation {photometric!r}")

    codestream = _check_codestream(path, ds, index, n_frames, rows, cols)
    raw = decode_reduced(ds, codestream, target_size) if codestream is not None else None
    if raw is None:
        raw = _decode(path, ds, index)
    bits_stored = _int(path, ds, "BitsStored", default=0) or None
    if photometric in _COLOUR and keyword == "PixelData":
        image, applied = _colour(path, ds, raw, photometric, bits_stored, window, notes)
    else:
        image, applied = _grayscale(path, ds, raw, index, window, notes, invert=photometric == "MONOCHROME1")
    meta = ImageMeta(
        path=path,
        format="dicom",
        shape=(int(image.shape[0]), int(image.shape[1])),
        bits_stored=bits_stored,
        photometric=photometric or None,
        window=applied,
        frame=index if n_frames > 1 else None,
        warnings=tuple(notes),
        attributes=_attributes(ds, notes),
    )
    return image, meta


def _ensure_transfer_syntax(path: Path, ds, keyword: str, notes: list[str]) -> None:
    """Check that a decoder exists for the transfer syntax; infer it for headerless native files."""

    tsyntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if not tsyntax:
        implicit, little = getattr(ds, "original_encoding", (None, None))
        if ds[keyword].is_undefined_length:
            raise ImageReadError(path, "compressed pixel data but no Transfer Syntax UID in the file meta")
        if implicit is None or little is None:
            raise ImageReadError(path, "no Transfer Syntax UID and the encoding cannot be inferred")
        tsyntax = uid.ImplicitVRLittleEndian if implicit else uid.ExplicitVRLittleEndian
        tsyntax = tsyntax if little else uid.ExplicitVRBigEndian
        ds.file_meta.TransferSyntaxUID = tsyntax
        notes.append(f"no Transfer Syntax UID in the file meta; assumed {tsyntax.name} from the encoding")
    tsyntax = uid.UID(str(tsyntax))
    name = f"{tsyntax} ({tsyntax.name})" if tsyntax.is_transfer_syntax else repr(str(tsyntax))
    try:
        decoder = get_decoder(tsyntax)
    except NotImplementedError as exc:
        raise ImageReadError(path, f"unsupported transfer syntax {name}: no pixel decoder exists for it") from exc
    if not decoder.is_available:
        missing = "; ".join(decoder.missing_dependencies) or "no plugin installed"
        raise ImageReadError(
            path, f"unsupported transfer syntax {name}: no installed decoder ({missing}; pip install 'radcnn[dicom]')"
        )


def _number_of_frames(path: Path, ds) -> int:
    value = ds.get("NumberOfFrames")
    if value in (None, ""):
        return 1
    try:
        n = int(value)
    except (TypeError, ValueError) as exc:
        raise ImageReadError(path, f"invalid NumberOfFrames {value!r}") from exc
    if n < 1:
        raise ImageReadError(path, f"invalid NumberOfFrames {n}")
    return n


def _check_codestream(path: Path, ds, index: int, n_frames: int, rows: int, cols: int) -> bytes | None:
    """Refuse a compressed frame whose own header claims more pixels than Rows × Columns (corrupt data).

    Returns the frame's codestream (None for native pixel data).
    """
    if not ds.file_meta.TransferSyntaxUID.is_encapsulated or "PixelData" not in ds:
        return None
    try:
        frame = get_frame(ds.PixelData, index, number_of_frames=n_frames)
    except Exception as exc:  # malformed item tags or offsets inside the encapsulated pixel data
        raise ImageReadError(path, f"corrupt encapsulated pixel data: {type(exc).__name__}: {exc}") from exc
    declared = codestream_size(frame)
    if declared is not None and declared[0] * declared[1] > rows * cols:
        raise ImageReadError(
            path,
            f"corrupt pixel data: frame {index} codestream declares {declared[0]}×{declared[1]} pixels "
            f"but Rows × Columns is {rows}×{cols}",
        )
    return frame


def _decode(path: Path, ds, index: int) -> np.ndarray:

    try:
        arr = pixel_array(ds, index=index)
    except Exception as exc:  # codec and length errors from pydicom/pylibjpeg: the pixel data is unusable
        tsyntax = ds.file_meta.TransferSyntaxUID
        raise ImageReadError(
            path, f"corrupt or undecodable pixel data ({tsyntax.name}): {type(exc).__name__}: {exc}"
        ) from exc
    except BaseException as exc:
        # Rust decoders (pylibjpeg-rle) turn an out-of-bounds read on corrupt data into pyo3's PanicException,
        # which derives from BaseException; found by the fuzz test. Anything else (Ctrl-C, exit) propagates.
        if type(exc).__name__ != "PanicException":
            raise
        tsyntax = ds.file_meta.TransferSyntaxUID
        raise ImageReadError(path, f"corrupt or undecodable pixel data ({tsyntax.name}): decoder panic: {exc}") from exc
    require_finite(path, arr)
    return arr


def _grayscale(path: Path, ds, raw: np.ndarray, index: int, window: Window, notes: list[str], *, invert: bool):
    if raw.ndim != 2:
        raise ImageReadError(path, f"monochrome pixel data decoded to shape {raw.shape}, expected 2-D")
    keep = _not_padding(path, ds, raw)
    values = _modality(path, ds, raw, index)
    applied: tuple[float, float] | None = None
    voi = _stored_voi(path, ds, index, notes) if window == "stored" else None
    if window == "full" or (window == "stored" and voi is None):
        image, constant = apply_full_range(values, keep, inplace=True)
        if constant:
            notes.append("constant image (min == max): all pixels set to 0")
    elif voi is not None and voi[0] == "lut":
        image, applied = _apply_voi_lut(path, ds, voi[1], values)
    elif voi is not None:
        _, center, width, function = voi
        image, applied = apply_window(values, center, width, function, inplace=True), (center, width)
    else:
        center, width = window  # type: ignore[misc]
        image, applied = apply_window(values, center, width, "LINEAR_EXACT", inplace=True), (center, width)
    if invert:
        np.subtract(np.float32(1.0), image, out=image)
    if keep is not None:
        image[~keep] = 0.0
    return image, applied


def _colour(path, ds, raw: np.ndarray, photometric: str, bits: int | None, window: Window, notes: list[str]):
    if photometric == "PALETTE COLOR":
        raw = apply_color_lut(raw, ds)
        bits = int(raw.dtype.itemsize * 8)
    if raw.ndim != 3 or raw.shape[-1] != 3:
        raise ImageReadError(path, f"{photometric} pixel data decoded to shape {raw.shape}, expected (H, W, 3)")
    notes.append(f"{photometric} converted to grayscale (BT.601 luma)")
    gray = luma(raw)
    if window == "stored":
        return scale_nominal(gray, float(2 ** (bits or 8) - 1)), None
    if window == "full":
        image, constant = apply_full_range(gray)
        if constant:
            notes.append("constant image (min == max): all pixels set to 0")
        return image, None
    center, width = window  # type: ignore[misc]
    return apply_window(gray, center, width, "LINEAR_EXACT"), (center, width)


def _not_padding(path: Path, ds, raw: np.ndarray) -> np.ndarray | None:
    """True where a pixel is real image, from PixelPaddingValue/RangeLimit on the stored values."""
    if "PixelPaddingValue" not in ds or not np.issubdtype(raw.dtype, np.integer):
        return None
    pad = _int(path, ds, "PixelPaddingValue")
    limit = _int(path, ds, "PixelPaddingRangeLimit", default=pad)
    low, high = min(pad, limit), max(pad, limit)
    keep = (raw < low) | (raw > high)
    return None if keep.all() else keep


def _modality(path: Path, ds, raw: np.ndarray, index: int) -> np.ndarray:
    if ds.get("ModalityLUTSequence") and np.issubdtype(raw.dtype, np.integer):
        return np.asarray(apply_modality_lut(raw, ds), dtype=np.float32)
    source = ds if "RescaleSlope" in ds else _functional_item(ds, index, "PixelValueTransformationSequence")
    values = raw.astype(np.float32)
    if source is None or "RescaleSlope" not in source:
        return values
    try:
        slope = float(source.RescaleSlope)
        intercept = float(source.get("RescaleIntercept", 0.0) or 0.0)
    except (TypeError, ValueError) as exc:
        raise ImageReadError(path, f"invalid RescaleSlope/RescaleIntercept: {exc}") from exc
    if not (np.isfinite(slope) and np.isfinite(intercept)) or slope == 0:
        raise ImageReadError(path, f"invalid rescale: RescaleSlope={slope}, RescaleIntercept={intercept}")
    if slope != 1.0:
        values *= np.float32(slope)
    if intercept != 0.0:
        values += np.float32(intercept)
    return values


def _functional_item(ds, index: int, sequence: str):
    """The first item of `sequence` for frame `index` in an enhanced multi-frame object, or None."""
    for groups, position in (("PerFrameFunctionalGroupsSequence", index), ("SharedFunctionalGroupsSequence", 0)):
        items = ds.get(groups)
        if items and len(items) > position and items[position].get(sequence):
            return items[position].get(sequence)[0]
    return None


def _stored_voi(path: Path, ds, index: int, notes: list[str]):
    """The file's own VOI: ("lut", item) or ("window", center, width, function); None when absent/unusable."""
    if ds.get("VOILUTSequence"):
        return ("lut", ds.VOILUTSequence[0])
    source = ds if "WindowCenter" in ds else _functional_item(ds, index, "FrameVOILUTSequence")
    if source is None or "WindowCenter" not in source or "WindowWidth" not in source:
        return None
    try:
        center, width = (_first_float(source.get(k)) for k in ("WindowCenter", "WindowWidth"))
        function = str(source.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
    except (TypeError, ValueError, IndexError) as exc:
        notes.append(f"unreadable WindowCenter/WindowWidth ({exc}); full range used instead")
        return None
    problem = window_problem(center, width, function)
    if problem:
        notes.append(f"stored window unusable ({problem}); full range used instead")
        return None
    return ("window", center, width, function)


def _apply_voi_lut(path: Path, ds, item, values: np.ndarray):
    """Apply a VOI LUT sequence item, normalising by the LUT's own output range (descriptors often overstate it)."""
    try:
        n_entries, first, _bits = (int(v) for v in item.LUTDescriptor)
    except (TypeError, ValueError, AttributeError) as exc:
        raise ImageReadError(path, f"invalid VOI LUT Descriptor: {exc}") from exc
    n_entries = n_entries or 65536
    if int(ds.get("PixelRepresentation", 0) or 0) == 1 and first > 32767:
        first -= 65536  # US-or-SS ambiguity: the first mapped value is signed for signed pixel data
    lut = item.LUTData
    if isinstance(lut, bytes):
        little = getattr(ds, "original_encoding", (None, True))[1] is not False
        lut = np.frombuffer(lut[: 2 * n_entries], dtype="<u2" if little else ">u2")
    lut = np.asarray(lut, dtype=np.float32).reshape(-1)[:n_entries]
    if lut.size == 0:
        raise ImageReadError(path, "VOI LUT Sequence item has no LUT Data")
    idx = np.rint(values)
    idx -= np.float32(first)
    np.clip(idx, 0, lut.size - 1, out=idx)
    image = lut[idx.astype(np.intp)]
    low, high = float(lut.min()), float(lut.max())
    if high > low:
        image -= np.float32(low)
        image *= np.float32(1.0 / (high - low))
    else:
        image[:] = 0.0
    # Report the input span the LUT covers as the equivalent (center, width).
    return image, (first + lut.size / 2.0, float(lut.size))


def _int(path: Path, ds, keyword: str, default: int | None = None) -> int:
    value = ds.get(keyword)
    if value is None or value == "":
        if default is None:
            raise ImageReadError(path, f"missing {keyword}, which is required to decode the pixel data")
        return default
    if isinstance(value, bytes):  # US-or-SS values that pydicom could not resolve stay as raw bytes
        little = getattr(ds, "original_encoding", (None, True))[1] is not False
        signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
        if len(value) != 2:
            raise ImageReadError(path, f"invalid {keyword}: {value!r}")
        return struct.unpack(("<" if little else ">") + ("h" if signed else "H"), value)[0]
    if isinstance(value, list | tuple | MultiValue):
        value = value[0] if len(value) else None
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ImageReadError(path, f"invalid {keyword} {value!r}: expected an integer") from exc


def _first_float(value) -> float:
    if value is None:
        raise ValueError("missing value")
    if not isinstance(value, str | bytes) and hasattr(value, "__len__"):
        value = value[0]
    return float(value)


def _attributes(ds, notes: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, keyword in _ATTRIBUTES.items():
        try:
            value = ds.get(keyword)
            text = str(value).strip() if value is not None else ""
        except (ValueError, TypeError, KeyError, UnicodeError) as exc:
            notes.append(f"header field {keyword} unreadable: {exc}")
            continue
        if text:
            out[name] = text
    return out
