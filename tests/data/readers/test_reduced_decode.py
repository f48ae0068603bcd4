"""Reduced-resolution decoding: JPEG 2000 header parsing, level choice, values against the full decode, fallbacks."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from PIL import Image

from radcnn.data.readers.codestream import J2KHeader, j2k_header
from radcnn.data.readers.dispatch import read_image
from radcnn.data.readers.reduced_decode import reduction_levels
from radcnn.data.transforms import preprocess

J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
TARGET = (60, 50)  # 224×192 sources: one level (112×96); two would give 56×48


def _codestream(height: int, width: int, precision: int, signed: bool, levels: int) -> bytes:
    """A JPEG 2000 main header by hand: SOC, SIZ (one component), QCD, COD, then SOT."""
    siz = struct.pack(">HHIIIIIIIIH", 41, 0, width, height, 0, 0, width, height, 0, 0, 1)
    siz += bytes([(precision - 1) | (0x80 if signed else 0), 1, 1])
    qcd = b"\xff\x5c" + struct.pack(">HB", 4, 0) + b"\x00"
    cod = b"\xff\x52" + struct.pack(">HBBHBBBBBB", 12, 0, 0, 1, 0, levels, 4, 4, 0, 1)
    return b"\xff\x4f\xff\x51" + siz + qcd + cod + b"\xff\x90" + b"\x00" * 10


def test_header_is_parsed_from_siz_and_cod():
    assert j2k_header(_codestream(1024, 800, 12, False, 5)) == J2KHeader(1024, 800, 1, 12, False, 5)
    assert j2k_header(_codestream(30, 20, 16, True, 3)) == J2KHeader(30, 20, 1, 16, True, 3)
    assert j2k_header(b"\xff\xd8\xff\xe0") is None  # JPEG, not JPEG 2000
    assert j2k_header(_codestream(64, 64, 8, False, 2)[:60]) is None  # cut before COD


@pytest.mark.parametrize(
    ("shape", "levels", "target", "expected"),
    [
        ((1024, 1024), 5, (224, 224), 2),  # 512, 256 ≥ 224; 128 is not
        ((1024, 1024), 1, (224, 224), 1),  # no more levels in the codestream than that
        ((2048, 1536), 5, (224, 224), 2),  # the narrower axis decides: 1536/8 = 192 < 224
        ((1021, 1024), 5, (224, 224), 1),  # 1021/4: OpenJPEG 256, Pillow 255 → that level is not used
        ((200, 200), 5, (224, 224), 0),  # already smaller than the target
    ],
)
def test_reduction_levels_keep_at_least_the_target(shape, levels, target, expected):
    assert reduction_levels(J2KHeader(*shape, 1, 12, False, levels), target) == expected


@pytest.fixture
def j2k_radiograph() -> np.ndarray:
    """A 12-bit 224×192 chest-like image with noise: what a lossless JPEG 2000 radiograph holds."""
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0:224, 0:192]
    body = np.exp(-(((rows - 112) / 90.0) ** 2 + ((cols - 96) / 70.0) ** 2))
    ribs = 200 * np.sin(rows / 6.0) * (body > 0.5)
    return (400 + 3000 * body + ribs + rng.normal(0, 30, rows.shape)).clip(0, 4095).astype(np.uint16)


def test_j2k_is_decoded_at_the_smallest_level_above_the_target_and_matches_the_full_decode(write_dicom, j2k_radiograph):
    path = write_dicom(
        j2k_radiograph, transfer_syntax=J2K_LOSSLESS, bits_stored=12, WindowCenter=2000, WindowWidth=4000
    )
    full, _ = read_image(path)
    reduced, meta = read_image(path, target_size=TARGET)
    assert full.shape == (224, 192) and reduced.shape == (112, 96) == meta.shape
    assert read_image(path, target_size=(56, 48))[0].shape == (56, 48)  # two levels when the target allows
    a, b = preprocess(full, TARGET)[0], preprocess(reduced, TARGET)[0]
    # Same picture, wavelet low-pass instead of a box mean: differences at the noise level only.
    assert np.abs(a - b).mean() < 0.005 and np.abs(a - b).max() < 0.05
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.999


def test_precision_scaling_keeps_stored_values(write_dicom):
    # A flat image: every resolution level holds the same stored values, so the windowed pixels must agree.
    flat = np.full((64, 64), 3000, dtype=np.uint16)
    path = write_dicom(flat, transfer_syntax=J2K_LOSSLESS, bits_stored=12, WindowCenter=2048, WindowWidth=4096)
    reduced, _ = read_image(path, target_size=(16, 16))
    full, _ = read_image(path)
    assert reduced.shape == (16, 16)
    np.testing.assert_allclose(reduced, full[0, 0], atol=1e-6)


@pytest.mark.parametrize(
    ("header", "why"),
    [
        ({"PixelPaddingValue": 0}, "padding would blur into its neighbours"),
        ({"photometric": "MONOCHROME1"}, None),
    ],
)
def test_fallbacks_and_monochrome1(write_dicom, j2k_radiograph, header, why):
    path = write_dicom(j2k_radiograph, transfer_syntax=J2K_LOSSLESS, bits_stored=12, **header)
    image, _ = read_image(path, target_size=TARGET)
    if why:
        assert image.shape == (224, 192)  # full decode
    else:
        assert image.shape == (112, 96)
        full, _ = read_image(path)
        assert np.corrcoef(preprocess(image, TARGET).ravel(), preprocess(full, TARGET).ravel())[0, 1] > 0.999


def test_uncompressed_and_no_target_are_full_size(write_dicom, j2k_radiograph):
    assert read_image(write_dicom(j2k_radiograph), target_size=TARGET)[0].shape == (224, 192)
    path = write_dicom(j2k_radiograph, name="j.dcm", transfer_syntax=J2K_LOSSLESS)
    assert read_image(path)[0].shape == (224, 192)


def test_jpeg_uses_dct_scaling_but_never_below_the_target(tmp_path, j2k_radiograph):
    path = tmp_path / "x.jpeg"
    Image.fromarray((j2k_radiograph >> 4).astype(np.uint8)).save(path, quality=95)
    full, _ = read_image(path)
    scaled, _ = read_image(path, target_size=(40, 30))
    assert full.shape == (224, 192) and scaled.shape == (56, 48)  # 1/4: the largest scale ≥ 40 on both axes
    assert read_image(path, target_size=TARGET)[0].shape == (112, 96)  # max side 60: 1/4 would give 48 < 60
    a, b = preprocess(full, (40, 30))[0], preprocess(scaled, (40, 30))[0]
    assert np.abs(a - b).mean() < 0.01
