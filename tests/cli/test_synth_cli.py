"""`radcnn synth` end to end on a tiny set."""

from __future__ import annotations

import csv

import pydicom

from radcnn.cli.app import main


def test_synth_writes_a_dataset_and_reports_it(tmp_path, capsys):
    out = tmp_path / "phantom"
    assert main(["synth", str(out), "--patients", "4", "--size", "64", "--seed", "3"]) == 0
    text = " ".join(capsys.readouterr().out.split())  # undo Rich's line wrapping
    with open(out / "labels.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert f"wrote {len(rows)} images of 4 patients" in text and str(out / "labels.csv") in text
    nodules = sum(r["nodule"] == "1" for r in rows)
    assert f"nodule {nodules} images" in text and "consolidation" in text
    assert pydicom.dcmread(out / rows[0]["path"]).Rows == 64


def test_synth_png_with_chosen_sites(tmp_path):
    out = tmp_path / "png"
    assert main(["synth", str(out), "-n", "3", "--size", "48", "--format", "png", "--sites", "site_b,site_c"]) == 0
    with open(out / "labels.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["site"] for r in rows} <= {"site_b", "site_c"} and rows[0]["path"].endswith(".png")


def test_synth_refuses_a_non_empty_folder(tmp_path, capsys):
    (tmp_path / "old.txt").write_text("keep me")
    assert main(["synth", str(tmp_path), "--patients", "1", "--size", "32"]) == 1
    assert "is not empty" in " ".join(capsys.readouterr().err.split())
    assert (tmp_path / "old.txt").read_text() == "keep me"
    assert main(["synth", str(tmp_path), "--patients", "1", "--size", "32", "--overwrite"]) == 0
    assert (tmp_path / "labels.csv").is_file() and not (tmp_path / "old.txt").exists()


def test_synth_bad_site_lists_the_valid_ones(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "x"), "--sites", "site_a,mars"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "unknown site 'mars'" in err and "site_a, site_b, site_c" in err
    assert not (tmp_path / "x").exists()


def test_synth_bad_format(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "x"), "--format", "jpeg"]) == 1
    assert "choose one of: dicom, png" in " ".join(capsys.readouterr().err.split())


def test_ctrl_c_exits_130_with_one_line_and_leaves_nothing_half_written(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "big"
    code = "import sys; from radcnn.cli.app import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "synth", str(out), "--patients", "5000", "--size", "512"],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not any(tmp_path.glob(".big.*")) and time.time() < deadline:  # rendering into the temporary folder
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    lines = [line for line in err.splitlines() if line.strip() and "━" not in line and "rendering" not in line]
    assert len(lines) == 1 and lines[0].startswith("interrupted:") and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
