"""Image dimensions from the header of a JPEG / JPEG-LS / JPEG 2000 codestream, without decoding it.

Why: a corrupt codestream can claim an image of billions of pixels; the C decoders then allocate and fill it
before pydicom notices that it does not match Rows × Columns (seen in fuzzing: one flipped bit → a 2 GB
allocation and 45 s of decoding). Reading the few header bytes first lets the DICOM reader refuse such a frame.
"""

from __future__ import annotations

import struct

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
