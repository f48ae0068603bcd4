"""`read_image`: one entry point for every image format, dispatched by file content.

The intensity convention (the one data contract of radcnn): a reader returns a float32 (H, W) array in [0, 1]
where 1 is the brightest display value of a standard radiograph — dense tissue and bone bright, air dark, i.e.
MONOCHROME2 display after the modality LUT and the VOI window. How each format gets there:

* DICOM: stored values → BitsStored masking → modality LUT (rescale slope/intercept or LUT sequence) →
  VOI window (``window``) into [0, 1] → MONOCHROME1 inverted → PixelPaddingValue pixels set to 0.
* PNG / JPEG / TIFF: integers divided by their nominal maximum (255, 65535); RGB → luma with a warning.
* NIfTI: scaled voxel values, windowed by the header's cal_min/cal_max when set, otherwise full range.

``window`` chooses the VOI step: ``"stored"`` (the file's own VOI LUT / window, falling back to the full range),
``"full"`` (min..max of the modality-LUT values, padding excluded) or an explicit ``(center, width)`` in
modality-LUT units, mapped linearly from ``center - width/2`` → 0 to ``center + width/2`` → 1.

Dispatch looks at the bytes (DICOM "DICM" at offset 128, the PNG/JPEG/TIFF magic numbers, the NIfTI header size)
and uses the suffix only as a hint (for gzipped NIfTI, and to word errors); DICOM written without the preamble
is recognised by its first data element. A file whose content matches no reader raises
:class:`~radcnn.errors.ImageReadError` naming the file; so does every failure inside a reader, with the
library's own message kept as the reason.
"""

from __future__ import annotations

import gzip
import logging
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from radcnn.data.readers.meta import ImageMeta
from radcnn.data.readers.windowing import Window, check_window
from radcnn.encryption.format import KEY_HELP, MAGIC
from radcnn.errors import ImageReadError, MissingExtraError

log = logging.getLogger(__name__)

# Bumped whenever a change to any reader or to `preprocess` changes output values: part of every cache key.
READER_VERSION = 2  # 2: reduced-resolution JPEG 2000 / JPEG decoding for a known target size

FORMATS = ("dicom", "png", "jpeg", "tiff", "nifti")

_SUFFIX_HINTS = {
    ".dcm": "dicom",
    ".dicom": "dicom",
    ".dic": "dicom",
    ".ima": "dicom",
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".nii": "nifti",
}


def read_image(
    path: str | os.PathLike[str],
    *,
    window: Window = "stored",
    frame: int | None = None,
    target_size: tuple[int, int] | None = None,
) -> tuple[np.ndarray, ImageMeta]:
    """Read one 2-D image as float32 (H, W) in [0, 1] (see the module docstring for the convention).

    `target_size` (height, width) says that the caller will shrink the image to that size: codecs that can
    decode at a lower resolution (JPEG 2000 levels, JPEG DCT scaling) then do so, never below it. The cache and
    inference pass the model's input size, so both see the same pixels.
    """
    path = Path(path)
    window = check_window(window)
    return read_image_bytes(path, _read_bytes(path), window=window, frame=frame, target_size=target_size)


def read_image_bytes(
    path: Path,
    data: bytes,
    *,
    window: Window = "stored",
    frame: int | None = None,
    target_size: tuple[int, int] | None = None,
) -> tuple[np.ndarray, ImageMeta]:
    """Decode `data` (the bytes of `path`). The cache uses this to read each file once for hashing and decoding."""
    path = Path(path)
    window = check_window(window)
    if frame is not None and (not isinstance(frame, int | np.integer) or frame < 0):
        raise ImageReadError(path, f"frame must be a non-negative integer, got {frame!r}")
    if not data:
        raise ImageReadError(path, "file is empty (0 bytes)")
    if data.startswith(MAGIC):  # `radcnn encrypt` output: say so rather than "matches no reader"
        raise ImageReadError(path, f"is encrypted (radcnn encryption at rest); a key is needed to read it: {KEY_HELP}")
    fmt = sniff_format(path, data)
    if fmt is None:
        raise ImageReadError(path, f"not a readable image: content matches no reader ({_describe(path, data)})")
    try:
        image, meta = _dispatch(fmt, path, data, window, frame, target_size)
    except (ImageReadError, MissingExtraError):
        raise
    except Exception as exc:  # the reader boundary: every library failure becomes an ImageReadError
        raise ImageReadError(path, f"{fmt} decoding failed: {type(exc).__name__}: {exc}") from exc
    return _checked(image, meta), meta


def _dispatch(fmt: str, path: Path, data: bytes, window: Window, frame: int | None, target_size):
    # Format modules are imported lazily: `import radcnn` must not pay for pydicom, PIL and nibabel.
    if fmt == "dicom":
        from radcnn.data.readers.dicom import read_dicom

        return read_dicom(path, data, window=window, frame=frame, target_size=target_size)
    if fmt == "nifti":
        from radcnn.data.readers.nifti import read_nifti

        return read_nifti(path, data, window=window, frame=frame)
    from radcnn.data.readers.images import read_pil_image

    return read_pil_image(path, data, fmt, window=window, frame=frame, target_size=target_size)


def _read_bytes(path: Path) -> bytes:
    try:
        if path.is_dir():
            raise ImageReadError(path, "is a directory, not an image file")
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise ImageReadError(path, "file not found") from exc
    except PermissionError as exc:
        raise ImageReadError(path, "permission denied") from exc
    except OSError as exc:
        raise ImageReadError(path, f"cannot read file: {exc.strerror or exc}") from exc


def sniff_format(path: Path, data: bytes) -> str | None:
    """The format that `data` holds, from its magic bytes (the suffix only helps with gzip: .nii.gz)."""
    head = data[:512]
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if _is_nifti_header(head):
        return "nifti"
    name = path.name.lower()
    if head.startswith(b"\x1f\x8b") and (name.endswith(".nii.gz") or _is_nifti_header(_gunzip_head(data))):
        return "nifti"
    # DICOM written without the 128-byte preamble (older or non-conformant writers) starts directly with a data
    # element of a low group. pydicom would "parse" any bytes when forced, so the first element must look real.
    if _looks_like_raw_dicom(head):
        return "dicom"
    return None


def _is_nifti_header(head: bytes) -> bool:
    if len(head) >= 348:
        for order in "<>":
            if struct.unpack(f"{order}i", head[:4])[0] == 348 and head[344:347] in (b"n+1", b"ni1"):
                return True
    if len(head) >= 8:
        for order in "<>":
            if struct.unpack(f"{order}i", head[:4])[0] == 540 and head[4:7] == b"n+2":
                return True
    return False


def _gunzip_head(data: bytes) -> bytes:
    try:
        with gzip.GzipFile(fileobj=_BytesReader(data)) as stream:
            return stream.read(540)
    except (OSError, EOFError):
        return b""


class _BytesReader:
    """Minimal file object over bytes (io.BytesIO would copy the whole buffer)."""

    def __init__(self, data: bytes):
        self._view, self._pos = memoryview(data), 0

    def read(self, n: int = -1) -> bytes:
        end = len(self._view) if n is None or n < 0 else min(len(self._view), self._pos + n)
        chunk = bytes(self._view[self._pos : end])
        self._pos = end
        return chunk


_RAW_DICOM_GROUPS = (0x0002, 0x0008, 0x0010, 0x0018, 0x0020, 0x0028)


def _looks_like_raw_dicom(head: bytes) -> bool:
    """True when `head` starts with a plausible data element: a low group, then a VR or a small length."""
    if len(head) < 8:
        return False
    for order in "<>":
        group, _element = struct.unpack(f"{order}HH", head[:4])
        if group not in _RAW_DICOM_GROUPS:
            continue
        vr = head[4:6]
        if vr.isalpha() and vr.isupper():  # explicit VR
            return True
        if struct.unpack(f"{order}I", head[4:8])[0] < 0x10000:  # implicit VR: a modest value length
            return True
    return False


def _describe(path: Path, data: bytes) -> str:
    name = path.name.lower()
    suffix = ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()
    hint = "nifti" if suffix == ".nii.gz" else _SUFFIX_HINTS.get(suffix)
    expected = f"suffix {suffix!r} suggests {hint} but " if hint else ""
    return f"{expected}its {len(data)} bytes start with {data[:8]!r}"


def _checked(image: Any, meta: ImageMeta) -> np.ndarray:
    """Enforce the contract on every reader's output: float32, 2-D, finite, in [0, 1]."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ImageReadError(meta.path, f"decoded to shape {image.shape}, expected a 2-D image")
    # Two reductions instead of isfinite + clip passes: NaN propagates into min/max and fails both tests.
    low, high = float(image.min()), float(image.max())
    if not (low >= -1e-4 and high <= 1 + 1e-4):
        raise ImageReadError(meta.path, f"reader produced values {low}..{high} outside [0, 1] (NaN/Inf or a bug)")
    if low < 0 or high > 1:  # float rounding in a LUT/window step
        image = np.clip(image, 0.0, 1.0)
    for warning in meta.warnings:
        log.warning("%s: %s", meta.path, warning)
    return image
