"""Burned-in text detection with Tesseract OCR (through pytesseract), and blanking of what it finds.

For each frame radcnn builds the display image (stored values stretched between the 0.5th and 99.5th
percentile to 8 bits, inverted for MONOCHROME1), downscales it so that its longer side is at most
`_BASE_SIDE` pixels (text burned into a 2k radiograph is 20-80 pixels tall, which Tesseract reads well at half
size; the cost of OCR grows with the pixel count), and runs Tesseract's sparse-text mode (``--psm 11``) on

* both polarities (Tesseract is trained on dark text on a light page: white labels are read on the inverted
  image, dark labels on the plain one), and
* a second, larger scale when the image was downscaled, for small print.

Every word with a confidence of at least ``ocr_min_confidence`` that contains a letter or digit becomes a box
(mapped back to stored pixels, padded by a third of its height); words listed in ``keep_markers`` (laterality
markers such as ``L`` or ``R``) are kept. The boxes are blanked on every frame with the darkest display value
(`pixels.store_blanked`), compressed pixel data is decoded first and stored uncompressed after. Box positions
and sizes go to the audit log; the text that was read never leaves this module.

Why pytesseract and not a hand-written detector: Tesseract is the maintained open OCR engine that Debian
packages (``tesseract-ocr`` + ``tesseract-ocr-eng``); pytesseract only runs its binary and parses its output.
"""

from __future__ import annotations

import functools
import logging
import shutil
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

from radcnn.errors import DeidentificationError
from radcnn.privacy.config import DeidConfig
from radcnn.privacy.pixels import decode_pixels, store_blanked

logger = logging.getLogger(__name__)

INSTALL_HINT = "sudo apt-get install tesseract-ocr tesseract-ocr-eng && pip install 'radcnn[privacy]'"
_BASE_SIDE = 1024
_PAD = 0.35


@dataclass(frozen=True)
class TextBox:
    """A text region in stored-pixel coordinates: [x0, x1) x [y0, y1)."""

    x0: int
    y0: int
    x1: int
    y1: int
    confidence: float

    def as_dict(self) -> dict:
        return {"x0": self.x0, "y0": self.y0, "x1": self.x1, "y1": self.y1, "confidence": round(self.confidence, 1)}


@functools.cache
def require_tesseract() -> str:
    """The Tesseract version; raises DeidentificationError naming the install command when it is missing."""
    try:
        import pytesseract
    except ImportError:
        raise DeidentificationError(f"--burned-in detect needs pytesseract: {INSTALL_HINT}") from None
    if shutil.which(pytesseract.pytesseract.tesseract_cmd) is None:
        raise DeidentificationError(f"--burned-in detect needs the Tesseract OCR program: {INSTALL_HINT}")
    try:
        languages = pytesseract.get_languages(config="")
    except Exception as exc:  # TesseractError, OSError: the binary exists but does not run
        raise DeidentificationError(f"Tesseract does not run ({exc}): {INSTALL_HINT}") from exc
    if "eng" not in languages:
        raise DeidentificationError(f"Tesseract has no English language data: {INSTALL_HINT}")
    return str(pytesseract.get_tesseract_version())


def display_image(frame: np.ndarray, monochrome1: bool) -> np.ndarray:
    """8-bit display image of one frame (colour frames: their mean over samples)."""
    values = frame.astype(np.float32)
    if values.ndim == 3:
        values = values.mean(axis=2)
    lo, hi = np.percentile(values[:: max(1, values.shape[0] // 256), :: max(1, values.shape[1] // 256)], (0.5, 99.5))
    if hi <= lo:
        lo, hi = float(values.min()), float(values.max()) + 1.0
    out = np.clip((values - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    return 255 - out if monochrome1 else out


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    from PIL import Image

    if scale == 1.0:
        return image
    h, w = image.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BOX if scale < 1 else Image.BILINEAR))


def _ocr_words(image: np.ndarray) -> list[tuple[str, float, int, int, int, int]]:
    import pytesseract

    data = pytesseract.image_to_data(image, lang="eng", config="--psm 11 --oem 1", output_type=pytesseract.Output.DICT)
    words = []
    for text, conf, x, y, w, h in zip(
        data["text"], data["conf"], data["left"], data["top"], data["width"], data["height"], strict=True
    ):
        text = str(text).strip()
        if text and any(c.isalnum() for c in text):
            words.append((text, float(conf), int(x), int(y), int(w), int(h)))
    return words


def scales_for(shape: tuple[int, int]) -> list[float]:
    base = min(1.0, _BASE_SIDE / max(shape))
    return [base] if base >= 1.0 else [base, min(1.0, 2 * base)]


def find_text_boxes(
    display: np.ndarray, *, min_confidence: float = 30.0, keep_markers: tuple[str, ...] = ()
) -> list[TextBox]:
    """Text boxes Tesseract finds in an 8-bit display image (see the module docstring), in its pixel coordinates."""
    rows, cols = display.shape
    boxes: list[TextBox] = []
    for scale in scales_for(display.shape):
        small = _resize(display, scale)
        for image in (small, 255 - small):
            for text, conf, x, y, w, h in _ocr_words(image):
                if conf < min_confidence:
                    continue
                if keep_markers and text.upper().strip(".:") in keep_markers:
                    continue
                pad = _PAD * h
                x0, y0 = max(0, int((x - pad) / scale)), max(0, int((y - pad) / scale))
                x1, y1 = min(cols, int(np.ceil((x + w + pad) / scale))), min(rows, int(np.ceil((y + h + pad) / scale)))
                if x1 > x0 and y1 > y0:
                    boxes.append(TextBox(x0, y0, x1, y1, conf))
    return boxes


def detect_and_blank(ds: Dataset, config: DeidConfig, *, where: str) -> list[dict]:
    """OCR every frame of `ds`, blank the union of the text boxes on every frame; returns the boxes."""
    require_tesseract()
    frames = decode_pixels(ds, where=where)
    monochrome1 = str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1"
    mask = np.zeros(frames.shape[1:3], dtype=bool)
    boxes: list[TextBox] = []
    for frame in frames:
        found = find_text_boxes(
            display_image(frame, monochrome1),
            min_confidence=config.ocr_min_confidence,
            keep_markers=config.keep_markers,
        )
        for box in found:
            mask[box.y0 : box.y1, box.x0 : box.x1] = True
        boxes.extend(found)
    if mask.any():
        store_blanked(ds, frames, mask, where=where)
    else:
        ds.BurnedInAnnotation = "NO"  # read by OCR, nothing found: the (possibly compressed) pixels stay as they are
    logger.debug("%s: %d text boxes blanked", where, len(boxes))
    return [b.as_dict() for b in boxes]
