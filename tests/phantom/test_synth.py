"""Writing the phantom dataset: DICOM validity and round trips, PNG, labels.csv, determinism, atomic output."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.uid import UID, ComputedRadiographyImageStorage, DigitalXRayImageStorageForPresentation

from radcnn.errors import ConfigError, RunDirectoryError, UnknownNameError
from radcnn.phantom.generator import render_study, sample_patient
from radcnn.phantom.sites import SITES, site_names
from radcnn.phantom.synth import CSV_COLUMNS, synthesize_dataset
from radcnn.phantom.writers import display_to_stored, write_dicom

SIZE = 64


@pytest.fixture(scope="module")
def dicom_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("phantom") / "dicom"
    calls = []
    result = synthesize_dataset(out, n_patients=6, size=SIZE, seed=1, progress=lambda d, t: calls.append((d, t)))
    return out, result, calls


def _rows(csv_path: Path) -> list[dict[str, str]]:
    with open(csv_path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _display_from_dicom(ds) -> np.ndarray:
    """Stored values → rescale → VOI window (DICOM LINEAR) → MONOCHROME1 inverted: the display image."""
    values = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    center, width = float(ds.WindowCenter), float(ds.WindowWidth)
    display = np.clip((values - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)
    return 1.0 - display if ds.PhotometricInterpretation == "MONOCHROME1" else display


def test_result_and_csv(dicom_set):
    out, result, calls = dicom_set
    rows = _rows(result.csv_path)
    assert result.csv_path == out / "labels.csv" and result.n_patients == 6
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert len(rows) == result.n_images and len({r["patient_id"] for r in rows}) == 6
    assert result.positives == {k: sum(r[k] == "1" for r in rows) for k in ("nodule", "consolidation")}
    assert sum(result.sites.values()) == result.n_images
    for row in rows:
        assert (out / row["path"]).is_file() and (out / row["mask_path"]).is_file()
        assert row["view"] == "PA" and row["sex"] in ("M", "F") and 18 <= int(row["age"]) <= 95
        assert row["site"] in SITES and row["nodule"] in ("0", "1") and row["consolidation"] in ("0", "1")
        boxes = json.loads(row["boxes"])
        assert int(row["nodule"]) == int(any(b["label"] == "nodule" for b in boxes))
        mask = np.asarray(Image.open(out / row["mask_path"]))
        lung = np.asarray(Image.open(out / row["lung_mask_path"])) > 0
        assert mask.max() == len(boxes) and not np.any((mask > 0) & ~lung)
        for k, box in enumerate(boxes, start=1):
            ys, xs = np.nonzero(mask == k)
            assert [box["x0"], box["y0"], box["x1"], box["y1"]] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    assert calls[-1] == (result.n_images, result.n_images)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_dicom_files_are_valid_and_consistent(dicom_set):
    out, result, _ = dicom_set
    rows = _rows(result.csv_path)
    instance_uids, study_uids, by_patient = set(), set(), {}
    for row in rows:
        ds = pydicom.dcmread(out / row["path"])
        site = SITES[row["site"]]
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        expected_class = (
            ComputedRadiographyImageStorage if site.modality == "CR" else DigitalXRayImageStorageForPresentation
        )
        assert ds.SOPClassUID == expected_class == ds.file_meta.MediaStorageSOPClassUID
        assert ds.Modality == site.modality and ds.PhotometricInterpretation == site.photometric
        assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (
            16,
            site.bits_stored,
            site.bits_stored - 1,
            0,
        )
        pixels = ds.pixel_array
        assert pixels.shape == (SIZE, SIZE) and pixels.dtype == np.uint16 and pixels.max() <= site.max_value
        assert ds.BodyPartExamined == "CHEST" and ds.ViewPosition == "PA" and ds.PatientID == row["patient_id"]
        assert ds.Manufacturer == site.manufacturer and ds.InstitutionName == site.institution
        assert ds.PatientSex == row["sex"] and ds.PatientAge == f"{int(row['age']):03d}Y"
        assert len(str(ds.PatientName).split("^")) == 2 and len(ds.PatientBirthDate) == 8
        assert ds.StudyDate == row["study_date"].replace("-", "")
        for uid in (ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID):
            assert UID(uid).is_valid
        assert ds.SOPInstanceUID not in instance_uids and ds.StudyInstanceUID not in study_uids
        instance_uids.add(ds.SOPInstanceUID)
        study_uids.add(ds.StudyInstanceUID)
        by_patient.setdefault(row["patient_id"], set()).add((ds.PatientName, ds.PatientBirthDate))
    assert all(len(identity) == 1 for identity in by_patient.values())  # one identity across follow-ups
    assert any(len(r) > 1 for r in _group(rows).values())  # the set has follow-ups


def _group(rows):
    groups: dict[str, list] = {}
    for row in rows:
        groups.setdefault(row["patient_id"], []).append(row)
    return groups


@pytest.mark.parametrize("site", site_names())
def test_dicom_round_trip_per_site(tmp_path, site):
    patient = sample_patient(4, 0, sites=[site])
    display = render_study(patient, 0, SIZE).image
    path = write_dicom(tmp_path / "x.dcm", display, patient, 0)
    ds = pydicom.dcmread(path)
    stored = ds.pixel_array
    lo, hi = SITES[site].stored_limits
    assert np.array_equal(stored, display_to_stored(display, SITES[site]))
    if site == "site_a":  # MONOCHROME1: bright (dense) display pixels are stored as low values
        assert ds.PhotometricInterpretation == "MONOCHROME1"
        assert np.corrcoef(stored.ravel(), display.ravel())[0, 1] < -0.99
    np.testing.assert_allclose(_display_from_dicom(ds), display, atol=1.0 / (hi - lo) + 1e-6)


@pytest.mark.parametrize("site", site_names())
def test_round_trip_through_radcnn_reader(tmp_path, site):
    from radcnn.data.readers.dispatch import read_image

    patient = sample_patient(4, 1, sites=[site])
    display = render_study(patient, 0, SIZE).image
    image, _meta = read_image(write_dicom(tmp_path / "x.dcm", display, patient, 0))
    lo, hi = SITES[site].stored_limits
    assert image.dtype == np.float32 and image.shape == display.shape
    np.testing.assert_allclose(image, display, atol=2.0 / (hi - lo) + 1e-5)


def test_png_format_is_16_bit_display_convention(tmp_path):
    result = synthesize_dataset(tmp_path / "png", n_patients=2, size=SIZE, fmt="png", seed=2)
    row = _rows(result.csv_path)[0]
    path = result.out_dir / row["path"]
    header = path.read_bytes()[:26]
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and header[24] == 16 and header[25] == 0  # 16-bit grayscale
    values = np.asarray(Image.open(path)).astype(np.float64) / 65535.0
    patient = sample_patient(2, 0)
    np.testing.assert_allclose(values, render_study(patient, 0, SIZE).image, atol=1.0 / 65535 + 1e-6)


def test_same_seed_is_byte_identical_and_other_seed_differs(tmp_path, dicom_set):
    out, result, _ = dicom_set
    again = synthesize_dataset(tmp_path / "again", n_patients=6, size=SIZE, seed=1)
    assert again.csv_path.read_bytes() == result.csv_path.read_bytes()
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again.out_dir) for p in again.out_dir.rglob("*") if p.is_file())
    assert all((out / f).read_bytes() == (again.out_dir / f).read_bytes() for f in files)
    other = synthesize_dataset(tmp_path / "other", n_patients=6, size=SIZE, seed=2)
    assert other.csv_path.read_bytes() != result.csv_path.read_bytes()


def test_parallel_workers_write_the_same_files(tmp_path):
    one = synthesize_dataset(tmp_path / "one", n_patients=2, size=32, seed=5)
    two = synthesize_dataset(tmp_path / "two", n_patients=2, size=32, seed=5, workers=2)
    files = sorted(p.relative_to(one.out_dir) for p in one.out_dir.rglob("*") if p.is_file())
    assert all((one.out_dir / f).read_bytes() == (two.out_dir / f).read_bytes() for f in files)


def test_refuses_a_non_empty_folder_unless_overwrite(tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(RunDirectoryError, match="not empty"):
        synthesize_dataset(out, n_patients=1, size=32)
    assert (out / "keep.txt").exists()
    result = synthesize_dataset(out, n_patients=1, size=32, overwrite=True)
    assert not (out / "keep.txt").exists() and result.csv_path.is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert synthesize_dataset(empty, n_patients=1, size=32).csv_path.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy", "empty"]  # no temporary folders left


def test_a_failure_leaves_nothing_behind(tmp_path):
    def explode(done, total):
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        synthesize_dataset(tmp_path / "never", n_patients=2, size=32, progress=explode)
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="dicom, png"):
        synthesize_dataset(tmp_path / "x", n_patients=1, fmt="jpeg")
    with pytest.raises(UnknownNameError, match="site_a"):
        synthesize_dataset(tmp_path / "x", n_patients=1, sites="site_q")
    with pytest.raises(ConfigError):
        synthesize_dataset(tmp_path / "x", n_patients=0)
    with pytest.raises(ConfigError):
        synthesize_dataset(tmp_path / "x", n_patients=1, size=8)
    assert not (tmp_path / "x").exists()
