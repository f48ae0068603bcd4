"""The serving commands at the CLI: predict over folders (CSV/JSON), export, and clear errors for bad options.

(Here rather than in tests/cli/ because they share this folder's trained run.)"""

from __future__ import annotations

import csv
import io
import json

import pytest

from radcnn.cli.app import main


def test_predict_walks_folders_and_skips_what_is_not_an_image(run_dir, phantom_dicoms, tmp_path, capsys):
    folder = tmp_path / "export"
    for i, path in enumerate(phantom_dicoms[:3]):  # a PACS-export-like tree: files without suffix, nested
        (folder / f"series{i % 2}").mkdir(parents=True, exist_ok=True)
        (folder / f"series{i % 2}" / f"IM{i:04d}").write_bytes(path.read_bytes())
    (folder / "labels.csv").write_text("path,label\n")
    (folder / ".hidden.dcm").write_bytes(phantom_dicoms[0].read_bytes())
    out = tmp_path / "predictions.csv"
    assert main(["predict", str(run_dir), str(folder), "-f", "csv", "-o", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["path"] for r in rows] == [str(p) for p in sorted(folder.glob("series*/IM*"))]
    first = rows[0]
    assert float(first["nodule_threshold"]) > 0 and first["model"] == "run" and len(first["model_version"]) == 12
    assert first["nodule_positive"] == str(float(first["nodule_probability"]) >= float(first["nodule_threshold"]))
    err = capsys.readouterr().err
    assert "predicting" in err and "skipped 1 files that are not images" in err


def test_predict_json_has_warnings_and_ends_with_a_newline(run_dir, phantom_dicoms, tmp_path, capsys):
    from PIL import Image

    colour = tmp_path / "screenshot.png"
    Image.new("RGB", (300, 100), (200, 30, 30)).save(colour)
    assert main(["predict", str(run_dir), str(phantom_dicoms[0]), str(colour), "-f", "json"]) == 0
    out = capsys.readouterr().out
    assert out.endswith("\n")
    rows = json.loads(out)
    assert rows[0]["warnings"] == ""
    assert "colour image" in rows[1]["warnings"] and "aspect ratio" in rows[1]["warnings"]


def test_predict_refuses_a_folder_without_images(run_dir, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("nothing to see")
    assert main(["predict", str(run_dir), str(tmp_path)]) == 1
    assert "no image files in this folder" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_writes_a_checked_file_and_will_not_overwrite(run_dir, tmp_path, capsys, fmt):
    out = tmp_path / f"model.{fmt}"
    assert main(["export", str(run_dir), "--format", fmt, "--out", str(out)]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert out.is_file() and "max |logit difference|" in text and "limit 1e-4" in text
    assert main(["export", str(run_dir), "--format", fmt, "--out", str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err


def test_serving_commands_explain_bad_options(run_dir, tmp_path, capsys):
    short = tmp_path / "token.txt"
    short.write_text("abc\n")
    assert main(["serve", str(run_dir), "--token-file", str(short)]) == 1
    assert "at least 16 characters" in capsys.readouterr().err
    assert main(["serve", str(run_dir), "--token-file", str(tmp_path / "absent.txt")]) == 1
    assert "absent.txt" in capsys.readouterr().err
    assert main(["dicom-node", str(run_dir), "--reply-to", "pacs:104"]) == 1
    assert "HOST:PORT:AET" in capsys.readouterr().err
    assert main(["export", str(run_dir), "--format", "tflite", "--out", str(tmp_path / "m")]) == 1
    assert "onnx, torchscript" in capsys.readouterr().err
