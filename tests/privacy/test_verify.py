"""`check_tree`: what it reports on hand-made leaks, and that options declared in a file are honoured."""

from __future__ import annotations

import pytest
from dicom_builders import make_image, write
from pydicom.dataset import Dataset

from radcnn.errors import ConfigError, DeidentificationError
from radcnn.privacy.config import DeidConfig
from radcnn.privacy.deidentify import deidentify_file
from radcnn.privacy.verify import check_tree, read_identifiers

KEY = b"\x05" * 32


@pytest.fixture
def clean_file(tmp_path):
    return deidentify_file(write(make_image(), tmp_path / "in.dcm"), tmp_path / "out" / "clean.dcm", KEY)


def test_clean_output_has_no_findings_and_leaks_are_reported(tmp_path, clean_file):
    import pydicom

    path = tmp_path / "out" / "clean.dcm"
    assert check_tree(tmp_path / "out", identifiers=["Doe^Jane", "MRN0012345"]).ok
    ds = pydicom.dcmread(path)
    inner = Dataset()
    inner.OtherPatientIDs = "MRN0012345"  # X, two levels down
    outer = Dataset()
    outer.AnatomicRegionSequence = [inner]
    ds.ReferencedSeriesSequence = [outer]
    ds.StudyDate = "20210305"  # Z with a real value
    ds.StudyInstanceUID = "1.2.3.4"  # U not replaced
    ds.private_block(0x0011, "LEAKY", create=True).add_new(0x01, "OB", b"jane doe!")
    ds.save_as(path)
    report = check_tree(tmp_path / "out", identifiers=["MRN0012345", "Jane Doe"])
    found = {(f.location, f.problem.split(" (")[0]) for f in report.findings}
    assert (
        "ReferencedSeriesSequence/AnatomicRegionSequence/OtherPatientIDs",
        "present, but the profile removes it",
    ) in found
    assert ("StudyDate", "holds a value, but the profile empties it") in found
    assert ("StudyInstanceUID", "UID not replaced") in found
    assert ("(0011,1001)", "private attribute present") in found
    assert any(p.startswith("known identifier #1") for loc, p in found if "OtherPatientIDs" in loc)
    assert ("file bytes", "known identifier #2") in found  # case-insensitive, in binary private data
    assert report.files_with_findings == 1


def test_declared_options_are_honoured(tmp_path):
    ds = make_image()
    deidentify_file(write(ds, tmp_path / "in.dcm"), tmp_path / "out.dcm", KEY, DeidConfig(options={"retain_uids"}))
    assert check_tree(tmp_path / "out.dcm").ok  # kept UIDs are fine: the file declares 113110
    strict = check_tree(tmp_path / "out.dcm", options=[])
    assert {f.location for f in strict.findings} >= {"SOPInstanceUID", "StudyInstanceUID"}


def test_non_dicom_and_bad_arguments(tmp_path, clean_file):
    (tmp_path / "out" / "notes.txt").write_text("hello")
    report = check_tree(tmp_path / "out")
    assert [f.problem.split(":")[0] for f in report.findings] == ["not a de-identified DICOM file"]
    with pytest.raises(ConfigError, match="at least 3 characters"):
        check_tree(tmp_path / "out", identifiers=["JD"])
    with pytest.raises(DeidentificationError, match="nothing to check"):
        check_tree(tmp_path / "missing")
    lst = tmp_path / "ids.txt"
    lst.write_text("# known names\nDoe^Jane\n\n MRN0012345 \n")
    assert read_identifiers(lst) == ["Doe^Jane", "MRN0012345"]
