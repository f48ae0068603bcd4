"""PNG / JPEG / TIFF reader (Pillow): 8- and 16-bit grayscale, colour converted to luma with a warning.

Intensity: integers are divided by their nominal maximum (8-bit by 255, 16-bit by 65535, 1-bit by 1) for
``window="stored"`` — these formats carry no window, so the stored values *are* the display values. ``"full"``
stretches min..max; an explicit (center, width) is read in stored units (0..255 or 0..65535). Float TIFFs have
no nominal maximum: "stored" falls back to the full range, with a warning.

Pillow reads 16-bit grayscale PNG and TIFF as mode "I;16"/"I;16B"/"I" without loss, so tifffile is not needed.
It does reduce 16-bit *colour* PNGs to 8 bits; that case is detected from the PNG header and reported.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from radcnn.data.readers.meta import MAX_PIXELS, ImageMeta, choose_frame
from radcnn.data.readers.windowing import Window, apply_full_range, apply_window, luma, require_finite, scale_nominal
from radcnn.errors import ImageReadError

_FORMAT_NAMES = {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF"}
# Nominal maximum of each integer grayscale mode; "I" is 32-bit in Pillow but holds 16-bit data for PNG.
_GRAY_MAXIMUM = {"1": 1.0, "L": 255.0, "I;16": 65535.0, "I;16B": 65535.0, "I;16L": 65535.0, "I;16N": 65535.0}
_COLOUR_MODES = ("RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "P", "PA", "LA")


def read_pil_image(
    path: Path, data: bytes, fmt: str, *, window: Window, frame: int | None, target_size: tuple[int, int] | None = None
) -> tuple[np.ndarray, ImageMeta]:
    """Decode a PNG, JPEG or TIFF held in `data`; `frame` picks a page of a multi-page TIFF.

    With `target_size`, a JPEG is decoded with libjpeg's DCT scaling (1/2, 1/4 or 1/8) to the smallest size that
    is still at least the target's larger side on both axes (whatever the EXIF orientation): several times
    faster for a 2,000-pixel JPEG headed for 224×224, and an area-like low-pass rather than an aliasing one.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    notes: list[str] = []
    try:
        with Image.open(io.BytesIO(data), formats=[_FORMAT_NAMES[fmt]]) as img:
            n_frames = int(getattr(img, "n_frames", 1) or 1)
            index = choose_frame(path, frame, n_frames, notes, unit="page")
            if index:
                img.seek(index)
            if img.width * img.height > MAX_PIXELS:
                raise ImageReadError(path, f"implausible image size {img.width}×{img.height}")
            if fmt == "jpeg" and target_size is not None:
                side = max(int(s) for s in target_size)
                img.draft(img.mode, (side, side))
            orientation = img.getexif().get(0x0112, 1) if fmt in ("jpeg", "tiff") else 1
            if orientation not in (None, 1):
                img = ImageOps.exif_transpose(img)
                notes.append(f"rotated/flipped per EXIF Orientation={orientation}")
            mode = img.mode
            arr, maximum = _to_gray(path, img, data if fmt == "png" else b"", notes)
    except ImageReadError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageReadError(path, f"not a valid {fmt.upper()} image: {exc}") from exc
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise ImageReadError(path, f"corrupt or truncated {fmt.upper()} image: {type(exc).__name__}: {exc}") from exc

    require_finite(path, arr)
    applied: tuple[float, float] | None = None
    if window == "stored" and maximum is not None:
        image = scale_nominal(arr, maximum)
    elif window in ("stored", "full"):
        if window == "stored":
            notes.append(f"mode {mode} has no nominal range; full range used")
        image, constant = apply_full_range(arr)
        if constant:
            notes.append("constant image (min == max): all pixels set to 0")
    else:
        center, width = window  # type: ignore[misc]
        image, applied = apply_window(arr, center, width, "LINEAR_EXACT"), (center, width)
    meta = ImageMeta(
        path=path,
        format=fmt,
        shape=(int(image.shape[0]), int(image.shape[1])),
        bits_stored=_bits(mode, maximum),
        photometric=mode,
        window=applied,
        frame=index if n_frames > 1 else None,
        warnings=tuple(notes),
        attributes={},
    )
    return image, meta


def _to_gray(path: Path, img, png_bytes: bytes, notes: list[str]) -> tuple[np.ndarray, float | None]:
    """A 2-D array in stored units and its nominal maximum (None when the mode has none)."""
    mode = img.mode
    if mode in _GRAY_MAXIMUM:
        return np.asarray(img), _GRAY_MAXIMUM[mode]
    if mode == "I":
        # Pillow opens some 16-bit grayscale PNGs (and 32-bit TIFFs) as mode "I": the header says which.
        bit_depth = png_bytes[24] if len(png_bytes) > 24 else 32
        arr = np.asarray(img)
        return arr, 65535.0 if bit_depth == 16 else None
    if mode == "F":
        return np.asarray(img, dtype=np.float32), None
    if mode in _COLOUR_MODES:
        if mode in ("LA", "PA", "RGBA") or (mode == "P" and "transparency" in img.info):
            notes.append(f"alpha channel of mode {mode} ignored")
        if mode == "LA":
            return np.asarray(img)[..., 0], 255.0
        if len(png_bytes) > 25 and png_bytes[24] == 16 and png_bytes[25] in (2, 6):
            notes.append("16-bit colour PNG reduced to 8 bits per channel by Pillow before conversion")
        rgb = np.asarray(img.convert("RGB"))
        notes.append(f"{'RGB' if mode in ('RGB', 'RGBA', 'RGBX') else mode} converted to grayscale (BT.601 luma)")
        return luma(rgb), 255.0
    raise ImageReadError(path, f"unsupported image mode {mode!r}")


def _bits(mode: str, maximum: float | None) -> int | None:
    if maximum is None:
        return 32 if mode in ("I", "F") else None
    return int(round(np.log2(maximum + 1)))
