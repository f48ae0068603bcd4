"""End-to-end de-identification: planted identifiers, real pydicom test files, consistency, policies, bad input."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_builders import PLANT_ROOT, make_image, planted_dataset, write
from pydicom.dataset import Dataset
from pydicom.pixels import pixel_array

from radcnn.encryption.cipher import decrypt_to_bytes
from radcnn.errors import ConfigError, DeidentificationError, EncryptionError
from radcnn.privacy.config import DeidConfig, Rectangle, SafePrivate
from radcnn.privacy.deidentify import AUDIT_LOG_NAME, deidentify_file, deidentify_tree
from radcnn.privacy.engine import Deidentifier
from radcnn.privacy.profile import annex_e_profile
from radcnn.privacy.verify import check_tree

KEY = bytes(range(100, 132))


def _read(path: Path) -> Dataset:
    return pydicom.dcmread(path)


# --- every Table E.1-1 attribute planted ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("planted")
    ds, planter, values = planted_dataset()
    src = write(ds, root / "in" / "planted.dcm")
    out = root / "out.dcm"
    deidentify_file(src, out, KEY)
    return src, out, planter, values


def test_planted_file_really_contains_every_identifier(planted):
    src, _, planter, values = planted
    data = src.read_bytes()
    assert len(planter.tokens) > 1000 and len(values) > 500
    assert all(t.encode() in data for t in planter.tokens)
    present = {int(r.tag.replace("x", "0"), 16) for r in annex_e_profile().rows if r.tag[0] != "g"}
    ds = _read(src)
    missing = [hex(t) for t in present if t >> 16 not in (0, 2) and t not in ds and not hex(t).startswith("0x50")]
    assert missing == []


def test_no_planted_identifier_survives_anywhere_in_the_bytes(planted):
    _, out, planter, _ = planted
    data = out.read_bytes().lower()
    survivors = [t for t in planter.tokens if t.lower().encode() in data]
    assert survivors == []
    assert PLANT_ROOT.encode() not in data  # no original UID anywhere, file meta included


def test_planted_numbers_and_dates_are_gone(planted):
    _, out, _, values = planted
    ds = _read(out)
    kept = {hex(tag): value for tag, value in values.items() if tag in ds and ds[tag].value == value}
    assert kept == {}
    assert not [e for e in ds.iterall() if e.tag.is_private]
    assert 0x60003000 not in ds and 0x60000010 not in ds and 0x50003000 not in ds  # overlay and curve groups


def test_output_is_conformant_and_marked(planted):
    _, out, _, _ = planted
    ds = _read(out)
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.LongitudinalTemporalInformationModified == "REMOVED"
    assert [i.CodeValue for i in ds.DeidentificationMethodCodeSequence] == ["113100"]
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.SOPInstanceUID.startswith("2.25.") and ds.PatientID.startswith("RC-")
    assert ds.preamble == b"\x00" * 128
    assert check_tree(out).ok


def test_command_set_elements_are_dropped_in_memory():
    ds = make_image()
    ds.add_new(0x00001001, "UI", "1.2.3")  # Requested SOP Instance UID: cannot be written to a file
    outcome = Deidentifier(KEY).deidentify(ds)
    assert 0x00001001 not in ds and "RequestedSOPInstanceUID" in outcome.audit.actions["removed"]


# --- real files from pydicom-data ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pydicom_run(tmp_path_factory):
    from pydicom.data import get_testdata_files

    root = tmp_path_factory.mktemp("pydicom")
    src = root / "in"
    src.mkdir()
    for name in get_testdata_files():
        if os.path.isfile(name):
            shutil.copy(name, src / Path(name).name)
    with warnings.catch_warnings():  # the test corpus is deliberately full of odd values
        warnings.simplefilter("ignore")
        config = DeidConfig(burned_in="allow", on_error="skip", layout="mirror")  # the corpus repeats SOP UIDs
        summary = deidentify_tree(src, root / "out", KEY, config)
    return src, root / "out", summary


def _first_frame(ds: Dataset) -> np.ndarray:
    """Decode frame 0 only: a 120-frame JPEG in the corpus would otherwise take seconds."""
    return pixel_array(ds, index=0 if int(ds.get("NumberOfFrames", 1) or 1) > 1 else None)


def test_pydicom_files_deidentify_and_still_decode(pydicom_run):
    src, out, summary = pydicom_run
    assert summary.count("ok") >= 200
    skipped = {r.source: r.reason for r in summary.results if r.status == "skipped"}
    for name, reason in skipped.items():  # only non-objects, DICOMDIRs and fragments are refused
        assert any(s in reason for s in ("not a DICOM file", "DICOMDIR", "not a storable")), (name, reason)
    decoded = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for r in summary.results:
            if r.status != "ok":
                continue
            before = pydicom.dcmread(src / r.source, force=True)
            try:
                expected = _first_frame(before)
            except Exception:  # noqa: BLE001 - files that never decoded (no handler, broken) are out of scope
                continue
            after = pydicom.dcmread(out / r.output)
            assert np.array_equal(_first_frame(after), expected), r.source
            assert after.PatientIdentityRemoved == "YES"
            decoded += 1
    assert decoded >= 100


def test_pydicom_outputs_pass_the_check(pydicom_run):
    _, out, _ = pydicom_run
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = check_tree(out)
    assert report.files_checked >= 200 and report.findings == []


def test_raw_pydicom_files_fail_the_check(pydicom_run):
    src, _, _ = pydicom_run
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = check_tree(src / "CT_small.dcm", identifiers=["CompressedSamples^CT1"])
    problems = {f.problem for f in report.findings}
    assert "missing or not YES" in problems
    assert "private attribute present" in problems
    assert any("UID not replaced" in p for p in problems)
    assert any("known identifier #1" in p for p in problems)


# --- a multi-series patient ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def patient_tree(tmp_path_factory):
    """Patient A: two studies 30 days apart, study 1 with two series; patient B: one study."""
    root = tmp_path_factory.mktemp("patients")
    src = root / "in"
    s1, s2, b1 = pydicom.uid.generate_uid(), pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    se = [pydicom.uid.generate_uid() for _ in range(3)]
    files = {
        "A/s1/se1/1.dcm": make_image(study_uid=s1, series_uid=se[0], study_date="20210301", seed=1),
        "A/s1/se1/2.dcm": make_image(study_uid=s1, series_uid=se[0], study_date="20210301", seed=2),
        "A/s1/se2/1.dcm": make_image(study_uid=s1, series_uid=se[1], study_date="20210301", seed=3),
        "A/s2/se1/1.dcm": make_image(study_uid=s2, series_uid=se[2], study_date="20210331", seed=4),
        "B/1.dcm": make_image(patient_id="MRN777", patient_name="Roe^Richard", study_uid=b1, study_date="20210301"),
    }
    refs = files["A/s1/se1/2.dcm"]
    item = Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = refs.SOPClassUID, files["A/s1/se1/1.dcm"].SOPInstanceUID
    refs.ReferencedInstanceSequence = [item]  # not in the table: kept, its UIDs replaced
    for rel, ds in files.items():
        write(ds, src / rel)
    config = DeidConfig(options={"retain_modified_dates", "clean_descriptors"})
    summary = deidentify_tree(src, root / "out", KEY, config, mapping=root / "map.rcenc", quarantine=root / "q")
    out = {r.source: _read(root / "out" / r.output) for r in summary.results}  # default layout: new UIDs
    assert set(out) == set(files)
    return root, files, out, summary


def test_uids_are_consistent_across_files(patient_tree):
    _, files, out, _ = patient_tree
    a1, a2, a3 = out["A/s1/se1/1.dcm"], out["A/s1/se1/2.dcm"], out["A/s1/se2/1.dcm"]
    assert a1.StudyInstanceUID == a2.StudyInstanceUID == a3.StudyInstanceUID != files["A/s1/se1/1.dcm"].StudyInstanceUID
    assert a1.SeriesInstanceUID == a2.SeriesInstanceUID != a3.SeriesInstanceUID
    assert out["A/s2/se1/1.dcm"].StudyInstanceUID != a1.StudyInstanceUID
    assert len({d.SOPInstanceUID for d in out.values()}) == 5
    # The reference inside a sequence follows the referenced object's new UID.
    assert a2.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == a1.SOPInstanceUID


def test_pseudonyms_and_date_intervals(patient_tree):
    _, _, out, _ = patient_tree
    a1, a4, b = out["A/s1/se1/1.dcm"], out["A/s2/se1/1.dcm"], out["B/1.dcm"]
    assert a1.PatientID == a4.PatientID == a1.PatientName and a1.PatientID != b.PatientID
    d1, d4 = (dt.datetime.strptime(d.StudyDate, "%Y%m%d") for d in (a1, a4))
    assert (d4 - d1).days == 30  # interval preserved
    assert a1.StudyDate != "20210301" and a1.StudyTime == "101500"  # shifted date, time kept
    assert a1.PatientBirthDate == ""  # not covered by the option: still emptied
    assert a1.LongitudinalTemporalInformationModified == "MODIFIED"
    assert {i.CodeValue for i in a1.DeidentificationMethodCodeSequence} == {"113100", "113105", "113107"}
    # Clean descriptors kept the description but scrubbed the name and MRN planted in it.
    assert a1.StudyDescription == "CHEST PA for *** MRN ***"  # "Doe Jane" matched as a whole


def test_audit_log_names_attributes_never_values(patient_tree):
    root, _, _, summary = patient_tree
    text = (root / "out" / AUDIT_LOG_NAME).read_text()
    records = [json.loads(line) for line in text.splitlines()]
    assert records[0]["run"]["options"] == ["clean_descriptors", "retain_modified_dates"]
    assert len(records) == 6 and all(r["status"] == "ok" for r in records[1:])
    audit = records[1]["audit"]
    assert {"PatientName", "PatientID"} <= set(audit["pseudonymised"]) and "InstitutionName" in audit["removed"]
    assert "PatientBirthDate" in audit["emptied"] and "PatientName" not in audit.get("emptied", [])
    for secret in ("MRN0012345", "Doe", "Jane", "20210301", "St Elsewhere", "House", "s1/se1", "A/", "B/1"):
        assert secret not in text
    assert all("source" not in r and len(r["source_id"]) == 16 for r in records[1:])
    assert summary.count("ok") == 5


def test_mapping_is_encrypted_and_reidentifies(patient_tree):
    root, files, out, _ = patient_tree
    raw = (root / "map.rcenc").read_bytes()
    assert b"MRN0012345" not in raw
    mapping = json.loads(decrypt_to_bytes(root / "map.rcenc", KEY))
    entry = mapping["patients"][out["A/s1/se1/1.dcm"].PatientID]
    assert entry["patient_id"] == "MRN0012345" and entry["patient_name"] == "Doe^Jane"
    assert entry["studies"][out["A/s2/se1/1.dcm"].StudyInstanceUID] == files["A/s2/se1/1.dcm"].StudyInstanceUID
    assert -3650 <= entry["date_shift_days"] <= -1
    with pytest.raises(EncryptionError, match="wrong key"):
        decrypt_to_bytes(root / "map.rcenc", bytes(32))


def test_same_key_same_result_across_runs_and_workers(patient_tree, tmp_path):
    root, _, out, _ = patient_tree
    config = DeidConfig(options={"retain_modified_dates", "clean_descriptors"}, workers=2)
    again_summary = deidentify_tree(root / "in", tmp_path / "again", KEY, config)
    outputs = {r.source: r.output for r in again_summary.results}
    assert outputs == {r.source: r.output for r in patient_tree[3].results}  # same names, too
    again = _read(tmp_path / "again" / outputs["A/s1/se1/1.dcm"])
    first = out["A/s1/se1/1.dcm"]
    assert (again.SOPInstanceUID, again.PatientID, again.StudyDate) == (
        first.SOPInstanceUID,
        first.PatientID,
        first.StudyDate,
    )
    other = deidentify_tree(root / "in", tmp_path / "other", bytes(32), DeidConfig(layout="mirror"))
    assert other.count("ok") == 5
    assert _read(tmp_path / "other" / "B" / "1.dcm").PatientID != out["B/1.dcm"].PatientID


def test_retain_options_keep_what_they_name(tmp_path):
    ds = make_image()
    ds.StationName, ds.DeviceSerialNumber, ds.PatientAge = "CT_ROOM_3", "SN123", "061Y"
    ds.PatientWeight = "70"
    opts = {"retain_uids", "retain_device_identity", "retain_institution_identity"}
    opts |= {"retain_patient_characteristics", "retain_full_dates"}
    deidentify_file(write(ds, tmp_path / "in.dcm"), tmp_path / "out.dcm", KEY, DeidConfig(options=opts))
    out = _read(tmp_path / "out.dcm")
    assert out.SOPInstanceUID == ds.SOPInstanceUID and out.StudyInstanceUID == ds.StudyInstanceUID
    assert (out.StationName, out.DeviceSerialNumber, out.InstitutionName) == ("CT_ROOM_3", "SN123", ds.InstitutionName)
    assert (out.PatientAge, out.PatientWeight, out.PatientSex) == ("061Y", 70, "F")
    assert out.StudyDate == "20210305" and out.LongitudinalTemporalInformationModified == "UNMODIFIED"
    assert out.PatientID.startswith("RC-") and "ReferringPhysicianName" in out and out.ReferringPhysicianName == ""


def test_safe_private_attributes_are_kept_only_when_listed(tmp_path):
    ds = make_image()
    block = ds.private_block(0x0019, "ACME_SAFE", create=True)
    block.add_new(0x10, "DS", "1.5")
    block.add_new(0x11, "LO", "Jane Doe")
    ds.private_block(0x0021, "OTHER", create=True).add_new(0x10, "LO", "MRN0012345")
    config = DeidConfig(options={"retain_safe_private"}, safe_private=(SafePrivate(0x0019, "ACME_SAFE", 0x10),))
    deidentify_file(write(ds, tmp_path / "in.dcm"), tmp_path / "out.dcm", KEY, config)
    out = _read(tmp_path / "out.dcm")
    kept = {(e.tag.group, e.tag.element): e.value for e in out if e.tag.is_private}
    assert kept == {(0x0019, 0x0010): "ACME_SAFE", (0x0019, 0x1010): "1.5"}
    assert check_tree(tmp_path / "out.dcm", safe_private=config.safe_private).ok
    assert not check_tree(tmp_path / "out.dcm").ok  # without the list the retained tag is reported
    with pytest.raises(ConfigError, match="needs the list"):
        DeidConfig(options={"retain_safe_private"})


# --- burned-in text --------------------------------------------------------------------------------------------


def test_burned_in_refused_by_default_and_quarantined(tmp_path):
    src = tmp_path / "in"
    write(make_image(burned_in="YES"), src / "yes.dcm")
    write(make_image(burned_in=None), src / "cr_unknown.dcm")  # DX without BurnedInAnnotation=NO
    write(make_image(burned_in="NO"), src / "ok.dcm")
    config = DeidConfig(layout="mirror")
    summary = deidentify_tree(src, tmp_path / "out", KEY, config, quarantine=tmp_path / "q")
    status = {r.source: r.status for r in summary.results}
    assert status == {"yes.dcm": "quarantined", "cr_unknown.dcm": "quarantined", "ok.dcm": "ok"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [AUDIT_LOG_NAME, "ok.dcm"]
    quarantined = _read(tmp_path / "q" / "yes.dcm")  # header de-identified, pixels untouched, for review
    assert quarantined.PatientID.startswith("RC-") and quarantined.BurnedInAnnotation == "YES"
    reasons = {r.source: r.reason for r in summary.results}
    assert "BurnedInAnnotation is YES" in reasons["yes.dcm"]
    assert "without BurnedInAnnotation=NO" in reasons["cr_unknown.dcm"]
    with pytest.raises(DeidentificationError, match="refused: burned-in text suspected"):
        deidentify_file(src / "yes.dcm", tmp_path / "single.dcm", KEY)


def test_blanking_rectangles(tmp_path):
    ds = make_image(burned_in="YES", rows=16, cols=20, seed=5)
    original = ds.pixel_array.copy()
    config = DeidConfig(burned_in="blank", blank_rectangles=(Rectangle(0, 0, 5, 3), Rectangle.parse("18,14,40,40")))
    deidentify_file(write(ds, tmp_path / "in.dcm"), tmp_path / "out.dcm", KEY, config)
    out = _read(tmp_path / "out.dcm")
    pixels = out.pixel_array
    assert (pixels[0:3, 0:5] == 0).all() and (pixels[14:, 18:] == 0).all()  # clipped to the image
    mask = np.ones_like(original, dtype=bool)
    mask[0:3, 0:5] = mask[14:, 18:] = False
    assert np.array_equal(pixels[mask], original[mask])
    assert out.BurnedInAnnotation == "NO"
    assert "113101" in {i.CodeValue for i in out.DeidentificationMethodCodeSequence}
    with pytest.raises(ConfigError, match="needs at least one rectangle"):
        DeidConfig(burned_in="blank")
    with pytest.raises(ConfigError, match="four non-negative integers"):
        Rectangle.parse("1,2,3")


def test_manufacturer_rule_and_allow_policy(tmp_path):
    ds = make_image(modality="CT", burned_in=None)
    path = write(ds, tmp_path / "in" / "ct.dcm")
    assert deidentify_tree(path.parent, tmp_path / "a", KEY).count("ok") == 1  # CT: no rule fires
    flagged = DeidConfig(flag_manufacturers=("acme",))
    assert deidentify_tree(path.parent, tmp_path / "b", KEY, flagged).count("quarantined") == 1
    allowed = deidentify_tree(
        path.parent, tmp_path / "c", KEY, DeidConfig(flag_manufacturers=("acme",), burned_in="allow")
    )
    assert allowed.count("ok") == 1 and "listed as burning in text" in allowed.results[0].burned_in[0]


# --- bad input -------------------------------------------------------------------------------------------------


def test_non_dicom_file_fails_or_is_skipped_never_copied(tmp_path):
    src = tmp_path / "in"
    write(make_image(), src / "good.dcm")
    (src / "notes.txt").write_text("Patient Jane Doe, MRN0012345")
    with pytest.raises(DeidentificationError, match="notes.txt: not a DICOM file"):
        deidentify_tree(src, tmp_path / "out", KEY)
    assert not (tmp_path / "out").exists()
    summary = deidentify_tree(src, tmp_path / "out", KEY, DeidConfig(on_error="skip"))
    assert {r.source: r.status for r in summary.results} == {"good.dcm": "ok", "notes.txt": "skipped"}
    assert not (tmp_path / "out" / "notes.txt").exists()


def test_output_inside_input_and_other_path_errors(tmp_path):
    src = tmp_path / "in"
    write(make_image(), src / "a.dcm")
    with pytest.raises(DeidentificationError, match="inside the input"):
        deidentify_tree(src, src / "out", KEY)
    with pytest.raises(DeidentificationError, match="inside the output"):
        deidentify_tree(src, tmp_path, KEY)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(DeidentificationError, match="not empty"):
        deidentify_tree(src, tmp_path / "full", KEY)
    with pytest.raises(DeidentificationError, match="mapping file"):
        deidentify_tree(src, tmp_path / "out", KEY, mapping=tmp_path / "out" / "map.rcenc")
    with pytest.raises(DeidentificationError, match="quarantine folder"):
        deidentify_tree(src, tmp_path / "out", KEY, quarantine=src / "q")


def test_uid_layout(tmp_path):
    src = tmp_path / "in"
    ds = make_image()
    write(ds, src / "Doe_Jane" / "scan.dcm")
    summary = deidentify_tree(src, tmp_path / "out", KEY, DeidConfig(layout="uid"))
    out = Path(summary.results[0].output)
    assert "Doe" not in str(out) and out.parts[0].startswith("2.25.") and out.suffix == ".dcm"
    assert _read(tmp_path / "out" / out).SOPInstanceUID == out.stem


def test_content_sequence_dummy_and_clean_structured_content():
    def report() -> Dataset:
        ds = make_image(modality="CT")
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "121071", "DCM", "Finding"
        item = Dataset()
        item.ValueType, item.ConceptNameCodeSequence = "TEXT", [code]
        item.TextValue = "Doe Jane (MRN0012345) seen on 2021-03-05: nodule stable"
        item.ObservationDateTime = "20210305101500"
        ds.ContentSequence = [item]
        return ds

    basic = report()
    Deidentifier(KEY).deidentify(basic)
    item = basic.ContentSequence[0]
    assert item.TextValue == "ANONYMIZED"  # D sequence: untabled free text inside becomes a dummy
    assert item.ConceptNameCodeSequence[0].CodeMeaning == "Finding"  # coded concepts survive
    assert "ObservationDateTime" not in item  # in the table (X/D): removed
    cleaned = report()
    Deidentifier(KEY, DeidConfig(options={"clean_structured_content"})).deidentify(cleaned)
    assert cleaned.ContentSequence[0].TextValue == "*** (***) seen on ***: nodule stable"
