"""Output names, the audit log and bad input: nothing identifying in paths or logs, nothing damaged written as ok,
no empty success."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest
from dicom_builders import make_image, write
from pydicom.data import get_testdata_file

from radcnn.cli.app import main
from radcnn.errors import DeidentificationError
from radcnn.privacy.config import DeidConfig, Layout
from radcnn.privacy.deidentify import deidentify_file, deidentify_tree
from radcnn.privacy.paths import mirror_name, path_identifiers
from radcnn.privacy.verify import check_tree

KEY = bytes(range(1, 33))


def _pacs_tree(root: Path) -> Path:
    src = root / "export"
    write(make_image(patient_id="PX000001", study_date="20210305"), src / "PX000001" / "20210305" / "IM0001.dcm")
    write(make_image(patient_id="PX000001", study_date="20210305"), src / "PX000001" / "20210305" / "IM0002.dcm")
    write(make_image(patient_id="PX000002", patient_name="Roe^Rick"), src / "ROE_RICK" / "CHEST" / "im.dcm")
    return src


def test_default_layout_is_uid_and_names_never_come_from_input(tmp_path):
    src = _pacs_tree(tmp_path)
    assert DeidConfig().layout is Layout.UID
    summary = deidentify_tree(src, tmp_path / "out", KEY)
    outputs = [r.output for r in summary.results]
    assert all(o.startswith("2.25.") and o.count("/") == 2 for o in outputs)
    report = check_tree(tmp_path / "out", ["PX000001", "PX000002", "20210305", "Roe^Rick", "ROE_RICK"])
    assert report.ok, report.findings


def test_mirror_layout_replaces_identifying_components_consistently(tmp_path):
    src = _pacs_tree(tmp_path)
    summary = deidentify_tree(src, tmp_path / "out", KEY, DeidConfig(layout="mirror"))
    outputs = sorted(r.output for r in summary.results)
    first, second, third = (Path(o).parts for o in outputs)
    assert first[0] == second[0] and first[0].startswith("x") and first[1] == second[1]  # one token per folder
    assert (first[2], second[2]) == ("IM0001.dcm", "IM0002.dcm")  # not identifying: kept
    assert third[0].startswith("x") and third[1:] == ("CHEST", "im.dcm")  # ROE_RICK matched the name Roe^Rick
    assert check_tree(tmp_path / "out", ["PX000001", "20210305", "ROE_RICK"]).ok


def test_path_identifier_matching():
    ds = make_image(patient_id="MRN42", patient_name="Doe^Jane")
    idents = path_identifiers(ds, ["Doe^Jane", "20210305", "2021-03-05"])
    assert {"doe_jane", "doe jane", "doejane", "mrn42", "20210305"} <= set(idents)
    renamed = mirror_name(Path("Doe Jane/2021-03-05_CR/MRN42.dcm"), idents, b"k" * 32)
    parts = renamed.parts
    assert parts[0].startswith("x") and parts[1].startswith("x") and parts[2].endswith(".dcm")
    assert mirror_name(Path("other/IM1.dcm"), idents, b"k" * 32) == Path("other/IM1.dcm")


def test_truncated_files_are_quarantined_never_ok(tmp_path):
    src = tmp_path / "in"
    data = write(make_image(rows=64, cols=64), tmp_path / "full.dcm").read_bytes()
    src.mkdir()
    (src / "cut_pixels.dcm").write_bytes(data[: len(data) - 1000])
    (src / "cut_header.dcm").write_bytes(data[:200])
    jpeg = Path(get_testdata_file("JPEG2000.dcm")).read_bytes()
    (src / "cut_fragments.dcm").write_bytes(jpeg[: len(jpeg) - 300])
    write(make_image(), src / "fine.dcm")
    summary = deidentify_tree(src, tmp_path / "out", KEY, DeidConfig(burned_in="allow"))
    status = {r.source: (r.status, r.reason) for r in summary.results}
    assert status["fine.dcm"][0] == "ok"
    for name in ("cut_pixels.dcm", "cut_header.dcm", "cut_fragments.dcm"):
        assert status[name][0] == "quarantined", status[name]
        assert "truncated" in status[name][1] or "corrupt" in status[name][1]
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == 1
    with pytest.raises(DeidentificationError, match="truncated"):
        deidentify_file(src / "cut_pixels.dcm", tmp_path / "one.dcm", KEY)
    assert not (tmp_path / "one.dcm").exists()


def test_empty_and_non_dicom_inputs_are_errors(tmp_path, capsys):
    key = tmp_path / "k.key"
    assert main(["keygen", str(key)]) == 0
    (tmp_path / "empty").mkdir()
    assert main(["deid", str(tmp_path / "empty"), str(tmp_path / "o1"), "-k", str(key)]) == 1
    assert "contains no files" in capsys.readouterr().err
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("nothing")
    (junk / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    args = ["deid", str(junk), str(tmp_path / "o2"), "-k", str(key), "--on-error", "skip"]
    assert main(args) == 1
    assert "none of its 2 files is DICOM" in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()
    assert main(["deid", str(tmp_path / "missing"), str(tmp_path / "o3"), "-k", str(key)]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["deid", "check", str(tmp_path / "empty")]) == 1
    assert "holds no files" in capsys.readouterr().err


def test_single_file_gets_an_audit_log_and_bad_keys_are_clear(tmp_path, capsys):
    key = tmp_path / "k.key"
    assert main(["keygen", str(key)]) == 0
    src = write(make_image(burned_in="NO"), tmp_path / "Doe_Jane.dcm")
    assert main(["deid", str(src), str(tmp_path / "anon.dcm"), "-k", str(key)]) == 0
    lines = (tmp_path / "anon.dcm.deid_audit.jsonl").read_text().splitlines()
    record = json.loads(lines[1])
    assert record["status"] == "ok" and "PatientName" in record["audit"]["pseudonymised"]
    assert "Doe" not in "\n".join(lines) and "MRN0012345" not in "\n".join(lines)
    bad = tmp_path / "binary.key"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    assert main(["deid", str(src), str(tmp_path / "x.dcm"), "-k", str(bad)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "cannot be read as a radcnn key file" in err and "Traceback" not in err
    assert main(["deid", str(src), str(tmp_path / "x.dcm"), "-k", str(tmp_path)]) == 1  # a folder, not a key
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "x.dcm").exists()
    ds = pydicom.dcmread(tmp_path / "anon.dcm")
    assert ds.PatientID.startswith("RC-")


def test_output_inside_input_is_refused(tmp_path):
    src = _pacs_tree(tmp_path)
    with pytest.raises(DeidentificationError, match="inside the input"):
        deidentify_tree(src, src / "PX000001" / "anon", KEY)
    assert not (src / "PX000001" / "anon").exists()


@pytest.mark.parametrize("layout", ["uid", "mirror"])
def test_planted_tree_with_pacs_names_leaks_nothing_in_any_byte_or_path(tmp_path, layout):
    """Every Table E.1-1 attribute planted (nested, private, overlays), in folders named after the PatientID and
    the study date, plus PACS junk: nothing planted in any output byte or path, the audit log included."""
    from dicom_builders import PLANT_ROOT, planted_dataset

    src = tmp_path / "export"
    tokens: set[str] = set()
    for i in range(3):
        ds, planter, _ = planted_dataset()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{PLANT_ROOT}999{i}"
        ds.PatientID = f"PX{i:06d}"
        tokens.add(ds.PatientID)
        folders = (str(ds.PatientID), f"{ds.StudyDate}_{ds.AccessionNumber}")
        write(ds, src / folders[0] / folders[1] / f"IM{i}.dcm")
        tokens |= set(planter.tokens) | {str(ds.StudyDate), str(ds.PatientBirthDate)}
    (src / "DICOMDIR.txt").write_text(" ".join(sorted(tokens)[:50]))
    config = DeidConfig(layout=layout, on_error="skip", burned_in="allow")
    summary = deidentify_tree(src, tmp_path / "out", KEY, config)
    assert summary.count("ok") == 3 and summary.count("skipped") == 1
    lowered = [t.lower() for t in tokens] + [PLANT_ROOT.lower()]
    for path in (p for p in (tmp_path / "out").rglob("*")):
        rel = path.relative_to(tmp_path / "out").as_posix().lower()
        assert not [t for t in lowered if t in rel], rel
        if path.is_file():
            data = path.read_bytes().lower()
            assert not [t for t in lowered if t.encode() in data], rel
