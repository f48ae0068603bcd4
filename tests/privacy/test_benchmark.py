"""The planted benchmark end to end: nothing planted survives anywhere, OCR blanks the burned-in text, the
MIDI-B-style scorer reaches 99.9 % and fails what is not done, and `deid check` finds values placed back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.datadict import keyword_for_tag

from radcnn.cli.app import main
from radcnn.phantom.generator import render_study, sample_patient
from radcnn.privacy.audit import read_audit_log
from radcnn.privacy.benchmark import EXPECTED, lung_area_blanked, make_benchmark
from radcnn.privacy.config import DeidConfig
from radcnn.privacy.deidentify import deidentify_tree
from radcnn.privacy.score import score_output
from radcnn.privacy.verify import check_tree

KEY = bytes(range(7, 39))
SEED, PATIENTS = 3, 2  # 2 + 3 studies: date shifts and UIDs must stay consistent within a patient
SHARED_TABLE = (
    Path(__file__).resolve().parents[3] / "shared" / "data" / "dicom" / "annex_e_confidentiality_profile.json"
)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    key_path = make_benchmark(root / "bm", patients=PATIENTS, size=1024, seed=SEED)
    config = DeidConfig(options={"retain_modified_dates"}, burned_in="detect", on_error="skip")
    summary = deidentify_tree(root / "bm" / "input", root / "out", KEY, config, mapping=root / "map.rcenc")
    return root, json.loads(key_path.read_text()), key_path, summary


def _all_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_benchmark_input_is_a_planted_pacs_export(bench):
    root, key, _, _ = bench
    assert len(key["files"]) == 5 and len(key["planted"]) > 60
    first = next(iter(key["files"]))
    patient_id, study_folder, _ = first.split("/")
    assert patient_id.startswith("PX") and study_folder[:8].isdigit()  # PatientID and study date in the path
    names = {p.name for p in _all_files(root / "bm" / "input")}
    assert "Thumbs.db" in names and f"{patient_id}_notes.txt" in names
    boxes = [a for f in key["files"].values() for a in f["actions"] if a["action"] == "region_blanked"]
    assert len(boxes) >= 25 and {b["polarity"] for b in boxes} == {"bright", "dark"}


def test_answer_key_actions_follow_the_reference_table():
    """The key's hand-written actions agree with the shared copy of PS3.15 Table E.1-1."""
    rows = {r["id"]: r for r in json.loads(SHARED_TABLE.read_text()) if len(r["id"]) == 8 and r["id"].isalnum()}
    by_keyword = {keyword_for_tag(int(i, 16)): r for i, r in rows.items() if "x" not in i.lower()}
    expected_basic = {"removed": {"X", "X/Z", "X/D", "X/Z/D"}, "emptied": {"Z", "X/Z"}, "replaced": {"Z", "Z/D"}}
    for attribute, action in EXPECTED.items():
        row = by_keyword.get(attribute)
        if action == "retained":
            assert row is None, attribute  # not in the table: kept
        elif action == "uid_changed":
            assert row["basicProfile"] == "U", attribute
        elif action == "date_shifted":
            assert row.get("rtnLongModifDatesOpt") == "C", attribute
        elif row is not None:
            assert row["basicProfile"] in expected_basic[action], (attribute, row["basicProfile"])


def test_nothing_planted_survives_in_any_byte_or_path(bench):
    root, key, _, summary = bench
    assert summary.count("ok") == 5 and summary.count("skipped") == 3  # notes, Thumbs.db never copied
    planted = [v.lower() for v in key["planted"]]
    for path in _all_files(root / "out"):
        rel = path.relative_to(root / "out").as_posix().lower()
        data = path.read_bytes().lower()
        for value in planted:
            assert value not in rel, (rel, value)
            assert value.encode() not in data and value.encode("utf-16-le") not in data, (rel, value)


def test_audit_log_is_path_free_and_worded_per_action(bench):
    root, key, _, _ = bench
    text = (root / "out" / "deid_audit.jsonl").read_text()
    for part in {p for rel in key["files"] for p in rel.split("/")} | {"Thumbs", "notes"}:
        assert part.lower() not in text.lower(), part
    header, records = read_audit_log(root / "out" / "deid_audit.jsonl")
    assert header["burned_in_policy"] == "detect" and header["layout"] == "uid"
    ok = [r for r in records if r["status"] == "ok"]
    assert all({"PatientID", "PatientName"} <= set(r["audit"]["pseudonymised"]) for r in ok)
    assert all("AccessionNumber" in r["audit"]["emptied"] and "OtherPatientIDs" in r["audit"]["removed"] for r in ok)
    assert all(r["blanked"] and r["boxes"] and {"x0", "y0", "x1", "y1"} <= set(r["boxes"][0]) for r in ok)
    skipped = [r for r in records if r["status"] == "skipped"]
    assert len(skipped) == 3 and all("<input>" in r["reason"] for r in skipped)


def test_score_reaches_the_target_and_covers_every_action_type(bench, capsys):
    root, _, key_path, _ = bench
    report = score_output(root / "out", key_path)
    data = report.as_dict()
    assert set(data["per_action"]) == {
        "date_shifted",
        "emptied",
        "pixels_retained",
        "region_blanked",
        "removed",
        "replaced",
        "retained",
        "uid_changed",
    }
    assert report.percent >= 99.9, data["failures"]
    assert main(["deid", "score", str(root / "out"), "--answer-key", str(key_path)]) == 0
    assert "region_blanked" in capsys.readouterr().out


def test_lung_fields_are_not_blanked_and_pixels_are_marked_clean(bench):
    root, key, key_path, summary = bench
    boxes = {}
    for result in (r for r in summary.results if r.status == "ok"):
        ds = pydicom.dcmread(root / "out" / result.output)
        assert ds.BurnedInAnnotation == "NO"
        assert "113101" in {i.CodeValue for i in ds.DeidentificationMethodCodeSequence}
        boxes[int(ds.InstanceNumber)] = result.boxes
    # The masks are the phantom's own lung fields, saved by the generator.
    index = int(next(iter(key["files"])).split("/")[0][2:]) - 1
    first = render_study(sample_patient(SEED, index), 0, size=1024).lung_mask
    saved = next(iter(key["files"].values()))["lung_mask"]
    assert np.array_equal(np.asarray(Image.open(key_path.parent / saved)).astype(bool), first)
    assert 0.0 <= lung_area_blanked(key_path, boxes) <= 0.01
    everything = {i: [{"x0": 0, "y0": 0, "x1": 1024, "y1": 1024}] for i in boxes}
    assert lung_area_blanked(key_path, everything) == 1.0


def test_scorer_fails_what_was_not_done(bench, tmp_path):
    root, key, key_path, _ = bench
    raw = score_output(root / "bm" / "input", key_path)  # the untouched input: only "retained" is right
    assert raw.as_dict()["per_action"]["retained"]["percent"] == 100.0 and raw.percent < 40
    broken = tmp_path / "broken"
    shutil.copytree(root / "out", broken)
    path = next(p for p in _all_files(broken) if p.suffix == ".dcm")
    ds = pydicom.dcmread(path)
    ds.OtherPatientIDs = "PX-LEAK"
    ds.save_as(path)
    failures = score_output(broken, key_path).failures
    assert [(f["action"], f["what"]) for f in failures] == [("removed", "OtherPatientIDs")]


def test_check_finds_every_value_placed_back_by_hand(bench, tmp_path, capsys):
    root, key, _, _ = bench
    patient_ids = sorted({f["patient"] for f in key["files"].values()})
    names = sorted(
        {a["original"] for f in key["files"].values() for a in f["actions"] if a.get("attribute") == "PatientName"}
    )
    accessions = sorted(
        {a["original"] for f in key["files"].values() for a in f["actions"] if a.get("attribute") == "AccessionNumber"}
    )
    identifiers = patient_ids + names + accessions
    assert check_tree(root / "out", identifiers).ok
    leaky = tmp_path / "leaky"
    shutil.copytree(root / "out", leaky)
    study = next(p for p in leaky.iterdir() if p.is_dir())
    study.rename(leaky / f"{patient_ids[0]}_study")  # a folder name
    (leaky / "notes.txt").write_text(f"call {names[1]} back\n")
    (leaky / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0" + accessions[2].encode("utf-16-le"))
    dcm = next(p for p in _all_files(leaky) if p.suffix == ".dcm" and patient_ids[0] not in str(p))
    ds = pydicom.dcmread(dcm)
    ds.ImageComments = f"acc {accessions[0]}"
    ds.save_as(dcm)
    report = check_tree(leaky, identifiers)
    found = {(f.location, f.problem.split(" (")[0]) for f in report.findings}
    assert ("file name", f"known identifier #{1}") in found
    assert any(f.path == "notes.txt" and "raw bytes" in f.problem for f in report.findings)
    assert any(f.path == "Thumbs.db" and "raw bytes" in f.problem for f in report.findings)
    assert any(f.location == "ImageComments" for f in report.findings)
    args = ["deid", "check", str(leaky)] + [a for i in identifiers for a in ("--identifier", i)]
    assert main(args) == 1
    assert "findings" in capsys.readouterr().err
