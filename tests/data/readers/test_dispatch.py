"""`read_image` dispatch and bad input: every failure is an ImageReadError naming the path and the reason."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from radcnn.data.readers.dispatch import ImageMeta, read_image
from radcnn.errors import ConfigError, ImageReadError


def test_dispatch_is_by_content_not_suffix(tmp_path, write_dicom, radiograph_12bit):
    Image.fromarray(np.full((4, 4), 51, dtype=np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "really_png.dcm").write_bytes((tmp_path / "a.png").read_bytes())
    image, meta = read_image(tmp_path / "really_png.dcm")
    assert meta.format == "png" and image[0, 0] == pytest.approx(0.2)
    dicom = write_dicom(radiograph_12bit).read_bytes()
    (tmp_path / "really_dicom.png").write_bytes(dicom)
    assert read_image(tmp_path / "really_dicom.png")[1].format == "dicom"
    (tmp_path / "no_suffix").write_bytes(dicom)
    assert read_image(tmp_path / "no_suffix")[1].format == "dicom"


def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match=r"nothere\.png: file not found") as info:
        read_image(tmp_path / "nothere.png")
    assert info.value.path == tmp_path / "nothere.png"


def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.dcm").write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"empty\.dcm: file is empty \(0 bytes\)"):
        read_image(tmp_path / "empty.dcm")


def test_directory(tmp_path):
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(ImageReadError, match=r"folder\.png: is a directory"):
        read_image(tmp_path / "folder.png")


@pytest.mark.parametrize("name", ["notes.png", "notes.jpg", "notes.tif", "notes.nii"])
def test_text_file_with_an_image_suffix(tmp_path, name):
    (tmp_path / name).write_text("patient list, not an image\n" * 20)
    with pytest.raises(ImageReadError, match=rf"{name}: not a readable image: content matches no reader"):
        read_image(tmp_path / name)


def test_text_file_with_dicom_suffix_is_not_dicom(tmp_path):
    (tmp_path / "notes.dcm").write_text("patient list, not an image\n" * 20)
    with pytest.raises(ImageReadError, match=r"notes\.dcm: not a readable image: .*suggests dicom"):
        read_image(tmp_path / "notes.dcm")


def test_windows_are_validated():
    for bad in ("auto", (40,), (40, 0), (40, -5), (float("nan"), 10), "40,400"):
        with pytest.raises(ConfigError, match="window"):
            read_image("unused.png", window=bad)


def test_negative_frame(tmp_path, write_dicom, radiograph_12bit):
    with pytest.raises(ImageReadError, match="frame must be a non-negative integer"):
        read_image(write_dicom(radiograph_12bit), frame=-1)


def test_output_contract_for_every_format(tmp_path, write_dicom, radiograph_12bit):
    import nibabel as nib

    Image.fromarray(radiograph_12bit).save(tmp_path / "x.png")
    Image.fromarray((radiograph_12bit >> 4).astype(np.uint8)).save(tmp_path / "x.jpg")
    Image.fromarray(radiograph_12bit).save(tmp_path / "x.tif")
    nib.save(nib.Nifti1Image(radiograph_12bit, np.eye(4)), tmp_path / "x.nii.gz")
    paths = [write_dicom(radiograph_12bit), *(tmp_path / f"x.{s}" for s in ("png", "jpg", "tif", "nii.gz"))]
    for path in paths:
        image, meta = read_image(path)
        assert isinstance(meta, ImageMeta) and meta.path == path
        assert image.dtype == np.float32 and image.shape == radiograph_12bit.shape == meta.shape
        assert np.isfinite(image).all() and 0 <= image.min() < image.max() <= 1
        assert meta.format in ("dicom", "png", "jpeg", "tiff", "nifti")
