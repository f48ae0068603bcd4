"""`--burned-in detect`: Tesseract finds the text, the pixels are blanked in any transfer syntax, markers may stay,
undecodable pixels are quarantined, and a missing Tesseract refuses with the install command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_builders import make_image, write
from matplotlib import get_data_path
from PIL import Image, ImageDraw, ImageFont
from pydicom.uid import JPEG2000Lossless, RLELossless

from radcnn.errors import DeidentificationError
from radcnn.privacy import ocr
from radcnn.privacy.config import DeidConfig
from radcnn.privacy.deidentify import deidentify_file, deidentify_tree

KEY = bytes(range(50, 82))
NAME_BOX = (190, 530, 490, 580)  # x0, y0, x1, y1 around the planted name line
MARKER_BOX = (440, 30, 520, 90)


def _font(height: int, name: str = "DejaVuSans-Bold.ttf") -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(Path(get_data_path()) / "fonts" / "ttf" / name), height)


def labelled_image(marker: str = "LT"):
    """A 600x600 12-bit DX with noise, a name line near the bottom and a view marker near the top (white)."""
    rng = np.random.default_rng(0)
    pixels = rng.normal(1500, 200, (600, 600)).clip(0, 4000).astype(np.uint16)
    ink = Image.new("L", (600, 600), 0)
    draw = ImageDraw.Draw(ink)
    draw.text((450, 40), marker, fill=255, font=_font(36))
    draw.text((200, 540), "DOE, JANE 1960-12-24", fill=255, font=_font(22))
    pixels[np.asarray(ink) > 127] = 4095
    ds = make_image(rows=600, cols=600, burned_in=None)
    ds.PixelData = pixels.tobytes()
    return ds, pixels


def _region(arr: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return arr[y0:y1, x0:x1]


def _text_gone(arr: np.ndarray, box) -> bool:
    return int((_region(arr, box) == 4095).sum()) == 0


@pytest.mark.parametrize("syntax", [None, RLELossless, JPEG2000Lossless])
def test_detect_blanks_text_in_every_transfer_syntax(tmp_path, syntax):
    ds, pixels = labelled_image()
    if syntax is not None:
        ds.compress(syntax, pixels, generate_instance_uid=False)
    src = write(ds, tmp_path / "in.dcm")
    result = deidentify_file(src, tmp_path / "out.dcm", KEY, DeidConfig(burned_in="detect"))
    out = pydicom.dcmread(tmp_path / "out.dcm")
    assert out.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"  # decoded, blanked, stored uncompressed
    arr = out.pixel_array
    assert _text_gone(arr, NAME_BOX) and _text_gone(arr, MARKER_BOX)
    untouched = np.ones(arr.shape, bool)
    for b in result.boxes:
        untouched[b["y0"] : b["y1"], b["x0"] : b["x1"]] = False
    assert np.array_equal(arr[untouched], pixels[untouched]) and untouched.mean() > 0.9
    assert out.BurnedInAnnotation == "NO"
    assert "113101" in {i.CodeValue for i in out.DeidentificationMethodCodeSequence}
    assert any("OCR-detected text" in m for m in out.DeidentificationMethod)
    log = (tmp_path / "out.dcm.deid_audit.jsonl").read_text()  # a single file gets its audit log
    assert '"boxes"' in log and "JANE" not in log and "DOE" not in log


def test_configured_markers_stay(tmp_path):
    ds, pixels = labelled_image("LT")
    src = write(ds, tmp_path / "in.dcm")
    deidentify_file(src, tmp_path / "out.dcm", KEY, DeidConfig(burned_in="detect", keep_markers=("lt", "R")))
    arr = pydicom.dcmread(tmp_path / "out.dcm").pixel_array
    assert _text_gone(arr, NAME_BOX)
    assert np.array_equal(_region(arr, MARKER_BOX), _region(pixels, MARKER_BOX))


def test_undecodable_pixels_are_quarantined_with_the_reason(tmp_path):
    ds, pixels = labelled_image()
    ds.compress(JPEG2000Lossless, pixels, generate_instance_uid=False)
    frame = bytearray(ds.PixelData)
    frame[40:200] = b"\x00" * 160  # inside the codestream: fragments intact, the image is not
    ds.PixelData = bytes(frame)
    write(ds, tmp_path / "in" / "broken.dcm")
    write(make_image(burned_in="NO"), tmp_path / "in" / "fine.dcm")
    summary = deidentify_tree(tmp_path / "in", tmp_path / "out", KEY, DeidConfig(burned_in="detect"))
    status = {r.source: (r.status, r.reason) for r in summary.results}
    assert status["fine.dcm"][0] == "ok"
    assert status["broken.dcm"][0] == "quarantined" and "cannot be decoded" in status["broken.dcm"][1]
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == 1


def test_missing_tesseract_refuses_with_the_install_command(tmp_path, monkeypatch):
    import pytesseract

    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    ocr.require_tesseract.cache_clear()
    try:
        src = write(make_image(), tmp_path / "in" / "a.dcm")
        with pytest.raises(DeidentificationError, match="apt-get install tesseract-ocr tesseract-ocr-eng"):
            deidentify_tree(src.parent, tmp_path / "out", KEY, DeidConfig(burned_in="detect"))
        with pytest.raises(DeidentificationError, match="tesseract-ocr"):
            deidentify_file(src, tmp_path / "one.dcm", KEY, DeidConfig(burned_in="detect"))
        assert not (tmp_path / "out").exists() and not (tmp_path / "one.dcm").exists()
    finally:
        ocr.require_tesseract.cache_clear()


def test_tesseract_is_really_there():
    """CI installs tesseract-ocr and tesseract-ocr-eng (Makefile SYSTEM_BINARIES): the OCR tests never skip."""
    assert ocr.require_tesseract().startswith(("4", "5"))


def test_small_print_on_a_2k_image_gets_a_second_look(monkeypatch):
    """A 13-point line on a 2048-pixel image is 5 pixels tall at the 1024-pixel first pass: too small for
    Tesseract there; the full-resolution second look finds it."""
    rng = np.random.default_rng(1)
    pixels = rng.normal(1500, 200, (2048, 2048)).clip(0, 4000).astype(np.uint16)
    ink = Image.new("L", (2048, 2048), 0)
    ImageDraw.Draw(ink).text((60, 1990), "ROE, RICHARD 1971-02-03 ACC7781", fill=255, font=_font(13))
    glyphs = np.asarray(ink) > 127
    pixels[glyphs] = 4095
    ys, xs = np.nonzero(glyphs)
    boxes = ocr.find_text_boxes(pixels, min_confidence=40)
    covered = np.zeros(glyphs.shape, bool)
    for b in boxes:
        covered[b.y0 : b.y1, b.x0 : b.x1] = True
    assert covered[ys, xs].all() and covered.mean() < 0.01
    monkeypatch.setattr(ocr, "_second_look", lambda *args, **kwargs: [])
    assert ocr.find_text_boxes(pixels, min_confidence=40) == []
