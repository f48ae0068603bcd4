"""Burned-in text detection with Tesseract OCR (through pytesseract), and blanking of what it finds.

Burned-in annotations are drawn at an extreme pixel value - white labels at the top of the value range, dark
print on a white label box at the bottom - while anatomy and noise rarely are. Per frame radcnn therefore builds
two "print layers" (pixels within 2 % of the maximum, and of the minimum, of the frame's stored values), keeps
only glyph-sized connected components in each (no speckle, no air or body areas), so a label in a black corner
reads as black print on white paper, in both polarities and whatever the photometric interpretation. Each layer
is downscaled so its longer side is at most 1024 pixels (text on a 2k radiograph is 25-60 pixels tall and reads
well at half size; OCR time grows with the pixel count) and read by Tesseract's sparse-text mode (``--psm 11``).

Words with a confidence of at least ``ocr_min_confidence`` (one-character words and lines of fewer than four
characters: 80) form line boxes; a line
box is mapped back to stored pixels, padded by a third of its height, and extended along its line over the
glyph ink that continues it (words Tesseract read with too little confidence). When the image was downscaled, line-shaped clusters of glyph ink that no box covers and that are too small
for the downscaled pass (under 20 pixels there) get a second look: cut out at full resolution, enlarged, stacked
into one image and read once more; a confident line makes the cluster a box. Words listed in ``keep_markers``
(laterality markers such as ``L`` or ``R``) are kept. The union of the boxes is blanked on every frame with the
darkest display value (`pixels.store_blanked`): compressed pixel data is decoded first and stored uncompressed.
Box positions and sizes go to the audit log; the text that was read never leaves this module.

Why pytesseract and not a hand-written detector: Tesseract is the maintained open OCR engine that Debian
packages (``tesseract-ocr`` + ``tesseract-ocr-eng``); pytesseract only runs its binary and parses its output.
The print layers, the component filter (scipy) and the line extension are radcnn's: Tesseract alone, on the
display image, found a third of the planted lines of the benchmark (noise and anatomy break its page layout).
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
_EXTREME = 0.005  # fraction of the value range counted as 'at the extreme'
_MAX_GLYPH = 0.06  # a character is at most this fraction of the image height tall
_MIN_INK = 4  # pixels: smaller components are noise
_SINGLE_CHAR_CONFIDENCE = 80.0
_MIN_GLYPHS = 4
_SMALL_PRINT = 20  # pixels (in the downscaled image): lines smaller than this get a second look
_JOIN = 0.005  # second look: ink within this fraction of the image height joins one line
_SHORT_LINE = 4  # characters
_GAP = 0.8  # a line continues over gaps up to this many line heights


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


def extreme_layers(frame: np.ndarray) -> list[np.ndarray]:
    """Black-on-white 8-bit images of the pixels at the top and at the bottom of the frame's value range.

    Burned-in annotations are drawn at an extreme value (white labels at the maximum, dark print on a white
    label box at the minimum), anatomy and noise rarely are: these layers give Tesseract clean print on
    paper, in both polarities, whatever the photometric interpretation."""
    values = frame.mean(axis=2) if frame.ndim == 3 else frame
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return []
    tol = _EXTREME * (hi - lo)
    return [_print_layer(values >= hi - tol), _print_layer(values <= lo + tol)]


def _print_layer(ink: np.ndarray) -> np.ndarray:
    """Keep only glyph-sized connected components of `ink`: no speckle (noise), no large areas (air, body).

    A white label in a black corner then reads as black print on white paper, which is what Tesseract segments
    reliably; the component filter is scipy's labelling, sizes relative to the image."""
    from scipy import ndimage

    labels, count = ndimage.label(ink)
    if count == 0:
        return np.full(ink.shape, 255, np.uint8)
    max_h, max_w = _MAX_GLYPH * ink.shape[0], 4 * _MAX_GLYPH * ink.shape[1]
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    # Speckle (most components of a noisy image) is dropped before the bounding boxes are computed.
    big = np.flatnonzero(sizes[1:] >= _MIN_INK) + 1
    renumber = np.zeros(count + 1, dtype=np.int32)
    renumber[big] = np.arange(1, big.size + 1)
    labels = renumber[labels]
    keep = np.zeros(big.size + 1, dtype=bool)
    for index, region in enumerate(ndimage.find_objects(labels, max_label=big.size), start=1):
        height, width = region[0].stop - region[0].start, region[1].stop - region[1].start
        keep[index] = height <= max_h and width <= max_w
    return np.where(keep[labels], 0, 255).astype(np.uint8)


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    from PIL import Image

    if scale == 1.0:
        return image
    h, w = image.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BOX if scale < 1 else Image.BILINEAR))


def _ocr_lines(
    image: np.ndarray, min_confidence: float, keep: tuple[str, ...]
) -> list[tuple[float, int, int, int, int]]:
    """(confidence, x0, y0, x1, y1) per text line Tesseract reads: the union of its words that look like text."""
    import pytesseract

    data = pytesseract.image_to_data(image, lang="eng", config="--psm 11 --oem 1", output_type=pytesseract.Output.DICT)
    lines: dict[tuple[int, int, int], list] = {}
    for i, text in enumerate(data["text"]):
        text, conf = str(text).strip(), float(data["conf"][i])
        alnum = sum(c.isalnum() for c in text)
        # One-character "words" at modest confidence are what noise and anatomy edges read as. Words below the
        # confidence threshold are kept with their confidence: `find_text_boxes` accepts them only where the
        # ink has the shape of a printed line.
        if alnum == 0 or conf < 0 or (alnum == 1 and conf < _SINGLE_CHAR_CONFIDENCE):
            continue
        if keep and text.upper().strip(".:") in keep:
            continue
        x, y, w, h = (int(data[k][i]) for k in ("left", "top", "width", "height"))
        key = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
        box = lines.setdefault(key, [conf, x, y, x + w, y + h, 0])
        box[0] = max(box[0], conf)
        box[1], box[2], box[3], box[4] = min(box[1], x), min(box[2], y), max(box[3], x + w), max(box[4], y + h)
        box[5] += alnum
    # A line of fewer than four characters (noise read as "ee", "Se") needs the confidence of a clear print.
    return [tuple(v[:5]) for v in lines.values() if v[5] >= _SHORT_LINE or v[0] >= _SINGLE_CHAR_CONFIDENCE]


def scale_for(shape: tuple[int, ...]) -> float:
    """Downscale factor so that the longer side is at most 1024 pixels."""
    return min(1.0, _BASE_SIDE / max(shape[:2]))


def find_text_boxes(
    frame: np.ndarray, *, min_confidence: float = 30.0, keep_markers: tuple[str, ...] = ()
) -> list[TextBox]:
    """Text boxes Tesseract finds in one frame of stored values (see the module docstring), in its coordinates."""
    rows, cols = frame.shape[:2]
    scale = scale_for(frame.shape)
    boxes: list[TextBox] = []
    for layer in extreme_layers(frame):
        small = _resize(layer, scale)
        ink = layer == 0
        for conf, x0, y0, x1, y1 in _ocr_lines(small, min_confidence, keep_markers):
            pad = _PAD * (y1 - y0)
            bx0, by0 = max(0, int((x0 - pad) / scale)), max(0, int((y0 - pad) / scale))
            bx1, by1 = min(cols, int(np.ceil((x1 + pad) / scale))), min(rows, int(np.ceil((y1 + pad) / scale)))
            if bx1 <= bx0 or by1 <= by0:
                continue
            if conf < min_confidence and not _looks_like_print(ink[by0:by1, bx0:bx1]):
                continue
            bx0, bx1 = _grow_line(ink, bx0, by0, bx1, by1)
            boxes.append(TextBox(bx0, by0, bx1, by1, conf))
        if scale < 1.0:
            boxes.extend(_second_look(ink, boxes, min_confidence, keep_markers, max_height=_SMALL_PRINT / scale))
    return boxes


def _second_look(
    ink: np.ndarray, found: list[TextBox], min_confidence: float, keep: tuple[str, ...], *, max_height: float
) -> list[TextBox]:
    """Small print the downscaled pass missed: line-shaped clusters of glyph ink, at most `max_height` tall,
    outside the boxes found so far, cut out at full resolution, enlarged to ~32-pixel lines, stacked into one
    image and read by Tesseract once. A cluster becomes a box when Tesseract reads a confident line in it."""
    from PIL import Image
    from scipy import ndimage

    rest = ink.copy()
    for b in found:
        rest[b.y0 : b.y1, b.x0 : b.x1] = False
    if not rest.any():
        return []
    rows, cols = rest.shape
    reach = max(2, int(_JOIN * rows))  # letters of one word/line join; separate lines do not
    joined = ndimage.maximum_filter1d(rest.view(np.uint8), 2 * reach + 1, axis=1) > 0
    crops, canvas_rows, y = [], [], 0
    for region in ndimage.find_objects(ndimage.label(joined)[0]):
        h, w = region[0].stop - region[0].start, region[1].stop - region[1].start
        if h > max_height or w < 3 * h or rest[region].sum() < _MIN_GLYPHS * _MIN_INK:
            continue  # cheap tests first: most clusters are a speck or two of noise
        if not _looks_like_print(rest[region]):
            continue
        factor = float(np.clip(32.0 / h, 1.0, 3.0))
        pad = h // 2
        y0, y1 = max(0, region[0].start - pad), min(rows, region[0].stop + pad)
        x0, x1 = max(0, region[1].start - pad), min(cols, region[1].stop + pad)
        piece = np.where(rest[y0:y1, x0:x1], 0, 255).astype(np.uint8)
        size = (round((x1 - x0) * factor), round((y1 - y0) * factor))
        piece = np.asarray(Image.fromarray(piece).resize(size, Image.Resampling.BILINEAR))
        crops.append(((x0, y0, x1, y1), y, y + piece.shape[0]))
        canvas_rows.append(piece)
        y += piece.shape[0] + 24
    if not crops:
        return []
    canvas = np.full((y, max(p.shape[1] for p in canvas_rows)), 255, np.uint8)
    for piece, (_, top, bottom) in zip(canvas_rows, crops, strict=True):
        canvas[top:bottom, : piece.shape[1]] = piece
    boxes = []
    for conf, _, ly0, _, ly1 in _ocr_lines(canvas, min_confidence, keep):
        if conf < min_confidence:
            continue
        middle = (ly0 + ly1) / 2
        for (x0, y0, x1, y1), top, bottom in crops:
            if top <= middle < bottom:
                boxes.append(TextBox(x0, y0, x1, y1, conf))
    return boxes


def _looks_like_print(ink: np.ndarray) -> bool:
    """At least `_MIN_GLYPHS` ink components of about the same height side by side on one baseline: a printed
    line, which noise and anatomy in the print layers rarely form."""
    from scipy import ndimage

    labels, count = ndimage.label(ink)
    if count < _MIN_GLYPHS:
        return False
    regions = [r for r in ndimage.find_objects(labels) if r is not None]
    heights = np.array([r[0].stop - r[0].start for r in regions], float)
    bottoms = np.array([r[0].stop for r in regions], float)
    tall = heights >= 0.5 * np.percentile(heights, 90)  # letters and digits, not dots and commas
    if tall.sum() < _MIN_GLYPHS:
        return False
    h, b = np.median(heights[tall]), np.median(bottoms[tall])
    aligned = tall & (np.abs(heights - h) <= 0.35 * h) & (np.abs(bottoms - b) <= 0.3 * h)
    return int(aligned.sum()) >= _MIN_GLYPHS


def _grow_line(ink: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> tuple[int, int]:
    """Extend a line box left and right over the glyph-sized ink that continues it (words Tesseract read with
    too little confidence, or not at all, on the same line), never beyond half the image width."""
    band = ink[y0:y1].any(axis=0)
    gap, limit = max(2, int(_GAP * (y1 - y0))), ink.shape[1] // 2
    while x1 < band.size and x1 - x0 < limit:
        ahead = np.flatnonzero(band[x1 : x1 + gap])
        if ahead.size == 0:
            break
        x1 += int(ahead[-1]) + 1
    while x0 > 0 and x1 - x0 < limit:
        behind = np.flatnonzero(band[max(0, x0 - gap) : x0])
        if behind.size == 0:
            break
        x0 = max(0, x0 - gap) + int(behind[0])
    return x0, x1


def detect_and_blank(ds: Dataset, config: DeidConfig, *, where: str) -> list[dict]:
    """OCR every frame of `ds`, blank the union of the text boxes on every frame; returns the boxes."""
    require_tesseract()
    frames = decode_pixels(ds, where=where)
    mask = np.zeros(frames.shape[1:3], dtype=bool)
    boxes: list[TextBox] = []
    for frame in frames:
        found = find_text_boxes(
            frame,
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
