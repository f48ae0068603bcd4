"""PNG / JPEG / TIFF reader: bit depths, colour conversion, pages, bad files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from radcnn.data.readers.dispatch import read_image
from radcnn.errors import ImageReadError


@pytest.fixture
def gray16() -> np.ndarray:
    return (np.arange(30 * 20, dtype=np.uint32).reshape(30, 20) * 109 % 65536).astype(np.uint16)


def test_png_16bit_is_divided_by_65535(tmp_path, gray16):
    path = tmp_path / "x.png"
    Image.fromarray(gray16).save(path)
    image, meta = read_image(path)
    np.testing.assert_allclose(image, gray16 / 65535.0, atol=1e-7)
    assert meta.format == "png" and meta.bits_stored == 16 and meta.shape == (30, 20) and meta.window is None


def test_png_8bit_is_divided_by_255(tmp_path):
    gray8 = np.arange(256, dtype=np.uint8).reshape(16, 16)
    Image.fromarray(gray8).save(tmp_path / "x.png")
    image, meta = read_image(tmp_path / "x.png")
    np.testing.assert_allclose(image, gray8 / 255.0, atol=1e-7)
    assert meta.bits_stored == 8 and meta.photometric == "L" and meta.warnings == ()


def test_jpeg_8bit(tmp_path):
    gray8 = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (48, 1))
    Image.fromarray(gray8).save(tmp_path / "x.jpg", quality=95)
    image, meta = read_image(tmp_path / "x.jpg")
    assert meta.format == "jpeg" and image.shape == (48, 64)
    assert np.abs(image - gray8 / 255.0).max() < 0.03  # lossy


def test_tiff_16bit(tmp_path, gray16):
    Image.fromarray(gray16).save(tmp_path / "x.tif")
    image, meta = read_image(tmp_path / "x.tif")
    np.testing.assert_allclose(image, gray16 / 65535.0, atol=1e-7)
    assert meta.format == "tiff" and meta.bits_stored == 16


def test_multi_page_tiff_pages(tmp_path):
    pages = [Image.fromarray(np.full((8, 8), v, dtype=np.uint8)) for v in (10, 20, 30)]
    pages[0].save(tmp_path / "p.tif", save_all=True, append_images=pages[1:])
    first, meta = read_image(tmp_path / "p.tif")
    assert meta.frame == 0 and first[0, 0] == pytest.approx(10 / 255)
    third, meta = read_image(tmp_path / "p.tif", frame=2)
    assert meta.frame == 2 and third[0, 0] == pytest.approx(30 / 255)
    with pytest.raises(ImageReadError, match="frame 3 out of range"):
        read_image(tmp_path / "p.tif", frame=3)


def test_float_tiff_uses_full_range_and_refuses_nan(tmp_path):
    values = np.array([[0.0, 2.0], [4.0, 8.0]], dtype=np.float32)
    Image.fromarray(values).save(tmp_path / "f.tif")
    image, meta = read_image(tmp_path / "f.tif")
    np.testing.assert_allclose(image, values / 8.0)
    assert any("full range" in w for w in meta.warnings)
    values[0, 0] = np.nan
    Image.fromarray(values).save(tmp_path / "nan.tif")
    with pytest.raises(ImageReadError, match=r"nan\.tif: 1 of 4 pixel values are NaN or Inf"):
        read_image(tmp_path / "nan.tif")


def test_rgb_png_to_luma_with_warning(tmp_path):
    rgb = np.zeros((5, 4, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 10, 200, 40
    Image.fromarray(rgb).save(tmp_path / "c.png")
    image, meta = read_image(tmp_path / "c.png")
    np.testing.assert_allclose(image, (0.299 * 10 + 0.587 * 200 + 0.114 * 40) / 255, atol=1e-6)
    assert meta.warnings == ("RGB converted to grayscale (BT.601 luma)",)


def test_rgba_alpha_is_reported(tmp_path):
    Image.fromarray(np.full((3, 3, 4), 128, dtype=np.uint8)).save(tmp_path / "a.png")
    _, meta = read_image(tmp_path / "a.png")
    assert "alpha channel of mode RGBA ignored" in meta.warnings


def test_window_choices_on_png(tmp_path):
    gray8 = np.array([[50, 100], [150, 200]], dtype=np.uint8)
    Image.fromarray(gray8).save(tmp_path / "w.png")
    full, meta = read_image(tmp_path / "w.png", window="full")
    np.testing.assert_allclose(full, (gray8.astype(float) - 50) / 150.0, atol=1e-6)
    assert meta.window is None
    explicit, meta = read_image(tmp_path / "w.png", window=(125, 100))
    np.testing.assert_allclose(explicit, np.clip((gray8.astype(float) - 125) / 100 + 0.5, 0, 1), atol=1e-6)
    assert meta.window == (125.0, 100.0)


def test_truncated_png(tmp_path, gray16):
    Image.fromarray(gray16).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"cut\.png: corrupt or truncated PNG"):
        read_image(tmp_path / "cut.png")
