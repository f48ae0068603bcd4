"""Image dimensions from the header of a JPEG / JPEG-LS / JPEG 2000 codestream, without decoding it.

Why: a corrupt codestream can claim an image of billions of pixels; the C decoders then allocate and fill it
before pydicom notices that it does not match Rows × Columns (seen in fuzzing: one flipped bit → a 2 GB
allocation and 45 s of decoding). Reading the few header bytes first lets the DICOM reader refuse such a frame.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# JPEG start-of-frame markers (baseline, extended, progressive, lossless, arithmetic variants) and JPEG-LS SOF55.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7}
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # markers without a length field (TEM, RSTn)
_MAX_SEGMENTS = 256


def codestream_size(frame: bytes) -> tuple[int, int] | None:
    """(height, width) declared by a JPEG-family or JPEG 2000 codestream; None when no header is found."""
    if frame[:2] == b"\xff\xd8":
        return _jpeg_size(frame)
    at = frame.find(b"\xff\x4f\xff\x51", 0, 4096)  # J2K SOC + SIZ (possibly inside a JP2 'jp2c' box)
    if at >= 0:
        return _j2k_size(frame, at + 4)
    return None


def _jpeg_size(frame: bytes) -> tuple[int, int] | None:
    pos = 2
    for _ in range(_MAX_SEGMENTS):
        while pos < len(frame) and frame[pos] == 0xFF and pos + 1 < len(frame) and frame[pos + 1] == 0xFF:
            pos += 1  # fill bytes
        if pos + 4 > len(frame) or frame[pos] != 0xFF:
            return None
        marker = frame[pos + 1]
        if marker in _STANDALONE:
            pos += 2
            continue
        (length,) = struct.unpack(">H", frame[pos + 2 : pos + 4])
        if marker in _JPEG_SOF:
            if pos + 9 > len(frame):
                return None
            height, width = struct.unpack(">HH", frame[pos + 5 : pos + 9])
            return height, width
        if marker == 0xDA or length < 2:  # start of scan before any frame header: malformed
            return None
        pos += 2 + length
    return None


def _j2k_size(frame: bytes, pos: int) -> tuple[int, int] | None:
    # SIZ: Lsiz(2) Rsiz(2) Xsiz(4) Ysiz(4) XOsiz(4) YOsiz(4) ...
    if pos + 20 > len(frame):
        return None
    xsiz, ysiz, xosiz, yosiz = struct.unpack(">IIII", frame[pos + 4 : pos + 20])
    if xsiz < xosiz or ysiz < yosiz:
        return None
    return ysiz - yosiz, xsiz - xosiz


@dataclass(frozen=True)
class J2KHeader:
    """What the main header of a JPEG 2000 codestream says about the first component and the wavelet levels."""

    height: int
    width: int
    components: int
    precision: int  # bits per sample of component 0
    signed: bool
    levels: int  # decomposition levels (COD's NL): how many times the image can be halved while decoding


def j2k_header(frame: bytes) -> J2KHeader | None:
    """Parse SIZ and COD of a JPEG 2000 codestream (raw or in a JP2 'jp2c' box); None when either is missing."""
    at = frame.find(b"\xff\x4f\xff\x51", 0, 4096)
    if at < 0:
        return None
    pos = at + 4  # SIZ: Lsiz(2) Rsiz(2) Xsiz Ysiz XOsiz YOsiz XTsiz YTsiz XTOsiz YTOsiz (4 each) Csiz(2) Ssiz(1)…
    size = _j2k_size(frame, pos)
    if size is None or pos + 41 > len(frame):
        return None
    (length,) = struct.unpack(">H", frame[pos : pos + 2])
    (components,) = struct.unpack(">H", frame[pos + 36 : pos + 38])
    ssiz = frame[pos + 38]
    pos += length
    for _ in range(_MAX_SEGMENTS):  # main header marker segments up to the first tile (SOT)
        if pos + 4 > len(frame) or frame[pos] != 0xFF or frame[pos + 1] == 0x90:
            return None
        marker, (length,) = frame[pos + 1], struct.unpack(">H", frame[pos + 2 : pos + 4])
        if marker == 0x52:  # COD: Lcod(2) Scod(1) progression(1) layers(2) MCT(1) NL(1) …
            if pos + 10 > len(frame):
                return None
            levels = frame[pos + 9]
            return J2KHeader(size[0], size[1], components, (ssiz & 0x7F) + 1, bool(ssiz & 0x80), levels)
        if length < 2:
            return None
        pos += 2 + length
    return None
