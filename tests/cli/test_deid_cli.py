"""`radcnn deid IN OUT`, `radcnn deid run IN OUT` and `radcnn deid check DIR` through `main`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from radcnn.cli.app import main


def _flat(text: str) -> str:
    """Rich wraps long lines at the terminal width; compare with whitespace runs collapsed."""
    return " ".join(text.split())


@pytest.fixture
def tree(tmp_path) -> Path:
    src = tmp_path / "in"
    (src / "p1").mkdir(parents=True)
    shutil.copy(get_testdata_file("CT_small.dcm"), src / "p1" / "ct.dcm")
    shutil.copy(get_testdata_file("MR_small.dcm"), src / "mr.dcm")
    return src


@pytest.fixture
def key(tmp_path) -> Path:
    path = tmp_path / "project.key"
    assert main(["keygen", str(path)]) == 0
    return path


def test_deid_default_command_and_check(tmp_path, tree, key, capsys):
    out = tmp_path / "out"
    args = ["deid", str(tree), str(out), "--key-file", str(key), "--modified-dates", "--layout", "mirror"]
    assert main(args) == 0
    text = _flat(capsys.readouterr().out)
    assert "de-identification" in text and "written" in text
    ds = pydicom.dcmread(out / "p1" / "ct.dcm")
    assert ds.PatientIdentityRemoved == "YES" and ds.LongitudinalTemporalInformationModified == "MODIFIED"
    assert (out / "deid_audit.jsonl").is_file()
    original = pydicom.dcmread(tree / "p1" / "ct.dcm")
    assert main(["deid", "check", str(out), "--identifier", str(original.PatientName)]) == 0
    assert "no findings" in _flat(capsys.readouterr().out)


def test_deid_run_spelling_single_file_and_options(tmp_path, tree, key):
    out = tmp_path / "one.dcm"
    args = ["deid", "run", str(tree / "mr.dcm"), str(out), "-k", str(key), "--retain-uids", "--clean-descriptors"]
    assert main(args) == 0
    ds = pydicom.dcmread(out)
    assert ds.SOPInstanceUID == pydicom.dcmread(tree / "mr.dcm").SOPInstanceUID
    assert {i.CodeValue for i in ds.DeidentificationMethodCodeSequence} == {"113100", "113105", "113110"}


def test_check_reports_raw_files_and_fails(tmp_path, tree, capsys):
    report = tmp_path / "report.json"
    args = ["deid", "check", str(tree), "--identifier", "CompressedSamples^CT1", "--report", str(report)]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "findings by kind" in captured.out
    assert "error:" in captured.err and "findings in 2 of 2 files" in _flat(captured.err)
    findings = json.loads(report.read_text())["findings"]
    problems = {f["problem"] for f in findings}
    assert "private attribute present" in problems and "missing or not YES" in problems
    assert {f["path"] for f in findings if "known identifier #1" in f["problem"]} == {"p1/ct.dcm"}


def test_missing_and_wrong_key_give_one_clear_message(tmp_path, tree, capsys, monkeypatch):
    monkeypatch.delenv("RADCNN_KEY_FILE", raising=False)
    assert main(["deid", str(tree), str(tmp_path / "out")]) == 1
    err = _flat(capsys.readouterr().err)
    assert "no key given: pass --key-file PATH" in err and "Traceback" not in err
    bad = tmp_path / "bad.key"
    bad.write_text("short\n")
    assert main(["deid", str(tree), str(tmp_path / "out"), "--key-file", str(bad)]) == 1
    assert "malformed" in _flat(capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def test_non_dicom_on_error_and_output_inside_input(tmp_path, tree, key, capsys):
    (tree / "readme.txt").write_text("Patient list")
    out = tmp_path / "out"
    assert main(["deid", str(tree), str(out), "-k", str(key)]) == 1
    assert "readme.txt: not a DICOM file" in _flat(capsys.readouterr().err)
    assert not out.exists()
    assert main(["deid", str(tree), str(out), "-k", str(key), "--on-error", "skip"]) == 0
    text = _flat(capsys.readouterr().out)
    assert "readme.txt" in text and not (out / "readme.txt").exists()
    log = [json.loads(line) for line in (out / "deid_audit.jsonl").read_text().splitlines()]
    assert [r["status"] for r in log[1:] if r["output"] is None] == ["skipped"]
    assert "readme" not in (out / "deid_audit.jsonl").read_text()  # named by its keyed source id only
    assert [r["source_id"] for r in log[1:] if r["status"] == "skipped"][0] in text
    assert main(["deid", str(tree), str(tree / "nested"), "-k", str(key)]) == 1
    assert "inside the input" in _flat(capsys.readouterr().err)


def test_mapping_and_quarantine_options(tmp_path, tree, key):
    ds = pydicom.dcmread(tree / "mr.dcm")
    ds.BurnedInAnnotation = "YES"
    ds.save_as(tree / "mr.dcm")
    out, mapping, quarantine = tmp_path / "out", tmp_path / "map.rcenc", tmp_path / "q"
    args = ["deid", str(tree), str(out), "-k", str(key), "--mapping", str(mapping), "--quarantine", str(quarantine)]
    args += ["--layout", "mirror"]
    assert main(args) == 0
    assert (quarantine / "mr.dcm").is_file() and not (out / "mr.dcm").exists()
    assert main(["decrypt", str(mapping), str(tmp_path / "map.json"), "-k", str(key)]) == 0
    patients = json.loads((tmp_path / "map.json").read_text())["patients"]
    assert [p["patient_name"] for p in patients.values()] == ["CompressedSamples^CT1"]
    blanked = tmp_path / "blanked"
    args = ["deid", str(tree), str(blanked), "-k", str(key), "--burned-in", "blank", "--blank", "0,0,8,8"]
    args += ["--layout", "same"]  # the old name of mirror is still accepted
    assert main(args) == 0
    corner = pydicom.dcmread(blanked / "mr.dcm").pixel_array[:8, :8]
    assert (corner == -32768).all()  # signed 16-bit MONOCHROME2: the darkest storable value
