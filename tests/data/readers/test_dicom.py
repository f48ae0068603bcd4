"""DICOM reader: the grayscale pipeline checked against hand-computed values, transfer syntaxes, bad files."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset

from radcnn.data.readers.dispatch import read_image
from radcnn.errors import ImageReadError

# Stored values and their modality values with RescaleSlope 2, RescaleIntercept -1024.
STORED = np.array([[0, 500, 512, 1000], [562, 412, 812, 1524]], dtype=np.uint16)
HU = STORED.astype(np.float64) * 2 - 1024  # [[-1024, -24, 0, 976], [100, -200, 600, 2024]]
RESCALE = {"RescaleSlope": 2, "RescaleIntercept": -1024, "BitsStored": 12}


def test_rescale_and_stored_linear_window_match_hand_computed(write_dicom):
    path = write_dicom(STORED, **RESCALE, WindowCenter=0, WindowWidth=401)
    image, meta = read_image(path)
    # DICOM LINEAR: y = clip((x - (c - 0.5)) / (w - 1) + 0.5) = clip((x + 0.5) / 400 + 0.5)
    expected = [[0.0, 0.44125, 0.50125, 1.0], [0.75125, 0.00125, 1.0, 1.0]]
    np.testing.assert_allclose(image, expected, atol=1e-6)
    assert image.dtype == np.float32 and image.shape == (2, 4)
    assert meta.window == (0.0, 401.0) and meta.format == "dicom" and meta.bits_stored == 12
    assert meta.photometric == "MONOCHROME2" and meta.frame is None and meta.shape == (2, 4)


def test_full_range_uses_min_max_of_modality_values(write_dicom):
    image, meta = read_image(write_dicom(STORED, **RESCALE, WindowCenter=0, WindowWidth=401), window="full")
    np.testing.assert_allclose(image, (HU + 1024) / 3048, atol=1e-6)
    assert meta.window is None


def test_explicit_window_maps_center_minus_half_width_to_zero(write_dicom):
    image, meta = read_image(write_dicom(STORED, **RESCALE), window=(0, 400))
    np.testing.assert_allclose(image, np.clip(HU / 400 + 0.5, 0, 1), atol=1e-6)
    assert meta.window == (0.0, 400.0)


def test_no_stored_window_falls_back_to_full_range(write_dicom):
    image, meta = read_image(write_dicom(STORED, **RESCALE))
    np.testing.assert_allclose(image, (HU + 1024) / 3048, atol=1e-6)
    assert meta.window is None


@pytest.mark.parametrize(
    ("function", "expected_100"),
    [("LINEAR_EXACT", 100 / 400 + 0.5), ("SIGMOID", 1 / (1 + np.exp(-1.0)))],
)
def test_voi_lut_function(write_dicom, function, expected_100):
    path = write_dicom(STORED, **RESCALE, WindowCenter=0, WindowWidth=400, VOILUTFunction=function)
    image, _ = read_image(path)
    assert image[1, 0] == pytest.approx(expected_100, abs=1e-6)  # stored 562 → 100 HU


def test_unusable_stored_window_warns_and_uses_full_range(write_dicom):
    image, meta = read_image(write_dicom(STORED, **RESCALE, WindowCenter=0, WindowWidth=0))
    np.testing.assert_allclose(image, (HU + 1024) / 3048, atol=1e-6)
    assert any("window" in w for w in meta.warnings)


@pytest.mark.parametrize("vr", ["US", "OW"])
def test_voi_lut_sequence(write_dicom, vr):
    item = Dataset()
    item.LUTDescriptor = [4, 10, 16]  # 4 entries, first input value mapped = 10
    lut = [0, 1000, 3000, 4000]
    item.add_new(0x00283006, vr, lut if vr == "US" else np.array(lut, dtype="<u2").tobytes())  # LUTData
    stored = np.array([[5, 10, 11], [12, 13, 100]], dtype=np.uint16)
    image, meta = read_image(write_dicom(stored, VOILUTSequence=[item]))
    np.testing.assert_allclose(image, [[0, 0, 0.25], [0.75, 1, 1]], atol=1e-6)
    assert meta.window == (12.0, 4.0)


def test_monochrome1_is_inverted_after_windowing(write_dicom):
    mono2, _ = read_image(write_dicom(STORED, name="m2.dcm", **RESCALE, WindowCenter=0, WindowWidth=401))
    path = write_dicom(STORED, name="m1.dcm", photometric="MONOCHROME1", **RESCALE, WindowCenter=0, WindowWidth=401)
    mono1, meta = read_image(path)
    np.testing.assert_allclose(mono1, 1 - mono2, atol=1e-6)
    assert meta.photometric == "MONOCHROME1"


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_padding_pixels_are_black_and_excluded_from_full_range(write_dicom, photometric):
    stored = np.full((6, 6), 0, dtype=np.uint16)
    stored[1:5, 1:5] = np.linspace(100, 1100, 16).reshape(4, 4)
    path = write_dicom(stored, photometric=photometric, PixelPaddingValue=0, BitsStored=12)
    image, _ = read_image(path, window="full")
    inside = (stored[1:5, 1:5] - 100.0) / 1000.0
    np.testing.assert_allclose(image[1:5, 1:5], inside if photometric == "MONOCHROME2" else 1 - inside, atol=1e-6)
    assert (image[0] == 0).all() and (image[:, -1] == 0).all()


def test_bits_above_bits_stored_are_ignored(write_dicom, radiograph_12bit):
    clean, _ = read_image(write_dicom(radiograph_12bit, name="clean.dcm", bits_stored=12))
    dirty, _ = read_image(write_dicom(radiograph_12bit | np.uint16(0xA000), name="dirty.dcm", bits_stored=12))
    np.testing.assert_array_equal(clean, dirty)


def test_signed_pixels_with_rescale(write_dicom):
    stored = np.array([[-1000, 0], [40, 1000]], dtype=np.int16)
    image, _ = read_image(write_dicom(stored, RescaleSlope=1, RescaleIntercept=0), window=(40, 80))
    np.testing.assert_allclose(image, [[0, 0], [0.5, 1]], atol=1e-6)


@pytest.mark.parametrize(
    "transfer_syntax",
    [
        "1.2.840.10008.1.2",  # implicit VR little endian
        "1.2.840.10008.1.2.2",  # explicit VR big endian
        "1.2.840.10008.1.2.1.99",  # deflated explicit VR little endian
        "1.2.840.10008.1.2.5",  # RLE lossless
        "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
    ],
)
def test_lossless_transfer_syntaxes_equal_explicit_little_endian(write_dicom, radiograph_12bit, transfer_syntax):
    reference, _ = read_image(
        write_dicom(radiograph_12bit, name="ref.dcm", bits_stored=12, WindowCenter=2000, WindowWidth=3000)
    )
    path = write_dicom(
        radiograph_12bit,
        name="ts.dcm",
        transfer_syntax=transfer_syntax,
        bits_stored=12,
        WindowCenter=2000,
        WindowWidth=3000,
    )
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == transfer_syntax
    image, _ = read_image(path)
    np.testing.assert_array_equal(image, reference)


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS lossless (pylibjpeg-libjpeg)
    ],
)
def test_real_lossless_files_equal_their_uncompressed_original(pydicom_testdata, name):
    reference, _ = read_image(pydicom_testdata["MR_small.dcm"])
    image, meta = read_image(pydicom_testdata[name])
    np.testing.assert_array_equal(image, reference)
    assert meta.window == (600.0, 1600.0)


@pytest.mark.parametrize(
    "name",
    [
        "JPGLosslessP14SV1_1s_1f_8b.dcm",  # JPEG lossless, process 14 SV1
        "JPGExtended.dcm",  # JPEG extended, 12-bit
        "JPEGLSNearLossless_08.dcm",  # JPEG-LS near-lossless
        "SC_rgb_jpeg_dcmtk.dcm",  # JPEG baseline, YBR_FULL colour
        "image_dfl.dcm",  # deflated
        "RG3_J2KI.dcm",  # JPEG 2000 lossy, real radiograph
    ],
)
def test_real_compressed_files_load(pydicom_testdata, name):
    image, meta = read_image(pydicom_testdata[name])
    assert image.shape == meta.shape and 0 <= image.min() <= image.max() <= 1 and image.std() > 0.01


def test_jpeg_baseline_colour_matches_uncompressed_luma(pydicom_testdata):
    jpeg, meta = read_image(pydicom_testdata["SC_rgb_jpeg_dcmtk.dcm"])
    raw, _ = read_image(pydicom_testdata["SC_rgb.dcm"])
    assert np.abs(jpeg - raw).mean() < 0.02  # lossy, but the same picture
    assert any("converted to grayscale" in w for w in meta.warnings)


def test_rgb_is_converted_to_luma_with_a_warning(write_dicom, caplog):
    rgb = np.zeros((4, 5, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50
    image, meta = read_image(write_dicom(rgb))
    np.testing.assert_allclose(image, (0.299 * 200 + 0.587 * 100 + 0.114 * 50) / 255, atol=1e-6)
    assert meta.warnings == ("RGB converted to grayscale (BT.601 luma)",)
    assert "RGB converted to grayscale" in caplog.text


def test_multi_frame_first_by_default_or_chosen(write_dicom, radiograph_12bit):
    frames = np.stack([radiograph_12bit // 4 + 1000 * k for k in range(3)]).astype(np.uint16)
    path = write_dicom(frames, bits_stored=12)
    first, meta = read_image(path, window=(2000, 4000))
    np.testing.assert_allclose(first, np.clip(frames[0] / 4000, 0, 1), atol=1e-6)
    assert meta.frame == 0 and any("frame 0 used" in w for w in meta.warnings)
    third, meta = read_image(path, window=(2000, 4000), frame=2)
    np.testing.assert_allclose(third, np.clip(frames[2] / 4000, 0, 1), atol=1e-6)
    assert meta.frame == 2 and meta.warnings == ()
    with pytest.raises(ImageReadError, match=r"frame 3 out of range: the file has 3 frame"):
        read_image(path, frame=3)


def test_single_frame_rejects_frame_one(write_dicom, radiograph_12bit):
    path = write_dicom(radiograph_12bit)
    assert read_image(path, frame=0)[1].frame is None
    with pytest.raises(ImageReadError, match="out of range"):
        read_image(path, frame=1)


def test_header_attributes(write_dicom, radiograph_12bit):
    path = write_dicom(
        radiograph_12bit, PatientID="P001", StudyInstanceUID="1.2.3.4", ViewPosition="PA", PatientSex="F",
        PatientAge="045Y", Manufacturer="ACME", InstitutionName="General",
    )  # fmt: skip
    attributes = read_image(path)[1].attributes
    assert attributes == {
        "patient_id": "P001", "study_uid": "1.2.3.4", "modality": "DX", "view_position": "PA", "sex": "F",
        "age": "045Y", "manufacturer": "ACME", "institution": "General",
    }  # fmt: skip


def test_float_pixel_data(tmp_path, write_dicom):
    path = write_dicom(np.zeros((2, 2), dtype=np.uint16))
    ds = pydicom.dcmread(path)
    del ds.PixelData, ds.BitsStored, ds.HighBit, ds.PixelRepresentation
    ds.BitsAllocated = 32
    ds.FloatPixelData = np.array([[0.0, 1.5], [3.0, 6.0]], dtype=np.float32).tobytes()
    ds.save_as(tmp_path / "float.dcm")
    image, _ = read_image(tmp_path / "float.dcm", window="full")
    np.testing.assert_allclose(image, [[0, 0.25], [0.5, 1]], atol=1e-6)
    ds.FloatPixelData = np.array([[0.0, np.nan], [np.inf, 6.0]], dtype=np.float32).tobytes()
    ds.save_as(tmp_path / "nan.dcm")
    with pytest.raises(ImageReadError, match=r"nan\.dcm: 2 of 4 pixel values are NaN or Inf"):
        read_image(tmp_path / "nan.dcm")


def test_no_pixel_data(tmp_path, write_dicom):
    ds = pydicom.dcmread(write_dicom(np.zeros((2, 2), dtype=np.uint16)))
    del ds.PixelData
    ds.save_as(tmp_path / "nopix.dcm")
    with pytest.raises(ImageReadError, match=r"nopix\.dcm: no pixel data.*Digital X-Ray Image Storage"):
        read_image(tmp_path / "nopix.dcm")


@pytest.mark.parametrize(
    ("uid", "expected"),
    [
        ("1.2.840.10008.1.2.4.100", r"unsupported transfer syntax 1\.2\.840\.10008\.1\.2\.4\.100 \(MPEG2"),
        ("1.2.826.0.1.9999.1", r"unsupported transfer syntax '1\.2\.826\.0\.1\.9999\.1'"),
    ],
)
def test_unsupported_transfer_syntax(tmp_path, write_dicom, radiograph_12bit, uid, expected):
    ds = pydicom.dcmread(write_dicom(radiograph_12bit, transfer_syntax="1.2.840.10008.1.2.5"))
    ds.file_meta.TransferSyntaxUID = uid
    ds.save_as(tmp_path / "mpeg.dcm")
    with pytest.raises(ImageReadError, match=r"mpeg\.dcm: " + expected):
        read_image(tmp_path / "mpeg.dcm")


@pytest.mark.parametrize("keep", [100, 400, 0.97])
def test_truncated_files(tmp_path, write_dicom, radiograph_12bit, keep):
    data = write_dicom(radiograph_12bit).read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: int(keep * len(data)) if keep < 1 else keep])
    with pytest.raises(ImageReadError, match=r"cut\.dcm: ") as info:
        read_image(cut)
    assert any(word in info.value.reason for word in ("corrupt", "missing", "no pixel data", "100 bytes"))


def test_headerless_dicom_is_read(tmp_path, write_dicom, radiograph_12bit):
    """A dataset written without preamble/file meta (older writers) is still found by its suffix or first tag."""
    ds = pydicom.dcmread(write_dicom(radiograph_12bit, transfer_syntax="1.2.840.10008.1.2"))
    ds.preamble, ds.file_meta = None, FileMetaDataset()
    raw = tmp_path / "raw"
    ds.save_as(raw, implicit_vr=True, little_endian=True)
    assert raw.read_bytes()[:2] == b"\x08\x00"  # starts with a group-0008 element, no preamble, no "DICM"
    image, meta = read_image(raw)
    reference, _ = read_image(write_dicom(radiograph_12bit, name="ref.dcm"))
    np.testing.assert_array_equal(image, reference)
    assert any("assumed Implicit VR Little Endian" in w for w in meta.warnings)
