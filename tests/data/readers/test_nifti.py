"""NIfTI reader: 2-D images, one-slice volumes, real volumes refused, display range, scaling."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from radcnn.data.readers.dispatch import read_image
from radcnn.errors import ImageReadError


def _save(path, data, **header):
    img = nib.Nifti1Image(data, affine=np.eye(4))
    for key, value in header.items():
        img.header[key] = value
    nib.save(img, path)
    return path


@pytest.mark.parametrize("name", ["x.nii", "x.nii.gz"])
def test_2d_round_trip_full_range(tmp_path, name):
    data = np.arange(12, dtype=np.int16).reshape(3, 4) * 10 - 20
    image, meta = read_image(_save(tmp_path / name, data))
    np.testing.assert_allclose(image, (data + 20) / 110.0, atol=1e-6)
    assert meta.format == "nifti" and meta.shape == (3, 4) and meta.window is None and meta.frame is None


def test_single_slice_volume_is_fine(tmp_path):
    data = np.linspace(0, 1, 20, dtype=np.float32).reshape(4, 5, 1)
    image, _ = read_image(_save(tmp_path / "s.nii", data))
    np.testing.assert_allclose(image, data[..., 0], atol=1e-6)


def test_real_volume_is_refused_naming_its_shape(tmp_path):
    path = _save(tmp_path / "v.nii.gz", np.zeros((4, 5, 3), dtype=np.float32))
    with pytest.raises(ImageReadError, match=r"v\.nii\.gz: NIfTI data of shape \(4, 5, 3\) is not a 2-D image"):
        read_image(path)


def test_cal_min_max_is_the_stored_window(tmp_path):
    data = np.array([[0, 100], [200, 400]], dtype=np.float32)
    path = _save(tmp_path / "c.nii", data, cal_min=100, cal_max=300)
    image, meta = read_image(path)
    np.testing.assert_allclose(image, [[0, 0], [0.5, 1]], atol=1e-6)
    assert meta.window == (200.0, 200.0)
    full, _ = read_image(path, window="full")
    np.testing.assert_allclose(full, data / 400.0, atol=1e-6)


def test_scl_slope_is_applied(tmp_path):
    img = nib.Nifti1Image(np.array([[0, 1], [2, 3]], dtype=np.int16), affine=np.eye(4))
    img.header.set_slope_inter(10.0, -5.0)
    nib.save(img, tmp_path / "s.nii")
    image, _ = read_image(tmp_path / "s.nii", window=(10, 20))  # values -5, 5, 15, 25 → (v - 10)/20 + 0.5
    np.testing.assert_allclose(image, [[0, 0.25], [0.75, 1]], atol=1e-6)


def test_nan_voxels_are_refused(tmp_path):
    path = _save(tmp_path / "n.nii", np.array([[0, np.nan]], dtype=np.float32))
    with pytest.raises(ImageReadError, match=r"n\.nii: 1 of 2 pixel values are NaN or Inf"):
        read_image(path)


def test_truncated_nifti(tmp_path):
    data = _save(tmp_path / "ok.nii", np.zeros((64, 64), dtype=np.float32)).read_bytes()
    (tmp_path / "cut.nii").write_bytes(data[:600])
    with pytest.raises(ImageReadError, match=r"cut\.nii: corrupt NIfTI"):
        read_image(tmp_path / "cut.nii")
