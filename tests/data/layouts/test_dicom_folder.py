"""A PACS export as hospitals hand it over: nested PatientID/date/series folders, files without suffixes, a
DICOMDIR, system files, a truncated file."""

import shutil

import pydicom
import pytest

from radcnn.cli.app import main
from radcnn.data.layouts import detect_layout, load_layout
from radcnn.data.layouts.inspection import inspect_dataset
from radcnn.errors import DataError, ManifestError


@pytest.fixture
def export(tmp_path, fake):
    root = tmp_path / "export"
    for patient, view in (("PX000001", "PA"), ("PX000002", "AP")):
        for k in range(2):
            path = fake.dicom(root / patient / "20240312" / f"1.2.840.{k}" / f"IM{k:04d}", view=view, size=16)
            dataset = pydicom.dcmread(path)
            dataset.PatientID, dataset.StudyInstanceUID = patient, f"1.2.3.{patient[-1]}.{k}"
            dataset.save_as(path)
    (root / "Thumbs.db").write_bytes(b"\x00" * 10)
    (root / "README.txt").write_text("exported by the PACS")
    truncated = root / "PX000002" / "20240312" / "1.2.840.1" / "IM0001"
    truncated.write_bytes(truncated.read_bytes()[:-100])
    return root


def test_an_export_is_detected_and_listed_from_its_headers(export):
    assert detect_layout(export) == "dicom_folder"
    manifest = load_layout("dicom_folder", export, on_error="skip")
    assert len(manifest) == 3 and manifest.label_names == ()
    assert set(manifest.table["patient_id"]) == {"PX000001", "PX000002"}
    assert set(manifest.table["view"]) == {"PA", "AP"} and set(manifest.table["size"]) == {"16×16"}
    reasons = dict(manifest.skipped)
    truncated = next(reason for path, reason in reasons.items() if path.endswith("1.2.840.1/IM0001"))
    assert truncated == "truncated: the pixel data holds 156 of the 256 bytes the header describes"
    assert "not a readable DICOM file" in next(r for p, r in reasons.items() if p.endswith("README.txt"))
    assert any(p.endswith("Thumbs.db") for p in reasons)


def test_fail_mode_names_the_first_bad_file(export):
    with pytest.raises(ManifestError, match="README.txt: not a readable DICOM file"):
        load_layout("dicom_folder", export)


def test_a_folder_without_dicom_files_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(DataError, match="no readable DICOM image files found"):
        load_layout("dicom_folder", tmp_path, on_error="skip")


def test_inspect_summarises_studies_series_and_transfer_syntaxes(export, capsys):
    report = inspect_dataset(export)
    assert report.layout == "dicom_folder"
    assert report.details["studies"] == 3 and report.details["view"] == {"PA": 2, "AP": 1}
    assert report.details["transfer_syntax"] == {"Explicit VR Little Endian": 3}
    assert main(["data", "inspect", str(export)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "dicom_folder" in out and "transfer syntax: Explicit VR Little Endian: 3" in out
    assert "truncated: the pixel data holds 156 of the 256 bytes" in out


def test_training_on_an_unlabelled_export_says_what_it_can_do(export, tmp_path):
    shutil.rmtree(export / "PX000002")
    assert main(["train", "--data", str(export), "--out", str(tmp_path / "run"), "--epochs", "1"]) == 1


def test_the_uid_tree_that_deid_writes_is_an_export_not_class_folders(tmp_path, fake):
    root = tmp_path / "deid-out"
    for k in range(2):
        fake.dicom(root / f"2.25.{100 + k}" / f"2.25.{200 + k}" / f"2.25.{300 + k}.dcm", size=16)
    assert detect_layout(root) == "dicom_folder"


def test_dcm_files_in_named_folders_still_look_like_classes(tmp_path, fake):
    for name in ("NORMAL", "PNEUMONIA"):
        fake.dicom(tmp_path / "data" / name / "a.dcm", size=16)
    assert detect_layout(tmp_path / "data") == "folder_per_class"
