"""`radcnn explain` and `radcnn explain-eval` end to end on a seed CNN trained on the blob task."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from radcnn.cli.app import main


def _blob_task():
    name = "radcnn_tests_blob_task"
    if name not in sys.modules:
        path = Path(__file__).parents[1] / "explain" / "blob_task.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    task = _blob_task()
    with task.one_thread():
        model = task.train_seed_cnn(task.make_blobs(192, size=32, seed=0), epochs=4)
        yield task.write_run(tmp_path_factory.mktemp("cli_run"), model, task.make_blobs(16, size=32, seed=5))


def test_list_shows_every_method(capsys):
    assert main(["explain", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("gradcam", "gradcam_pp", "integrated_gradients", "gradient_shap", "occlusion", "lime", "kernel_shap"):
        assert name in out


def test_explain_writes_maps_overlays_and_gallery(run_dir, tmp_path, capsys):
    images = sorted((run_dir.parent / "data" / "images").glob("*.png"))[:2]
    out = tmp_path / "explained"
    argv = ["explain", str(run_dir), *map(str, images), "--method", "gradcam,lime,kernel_shap", "--out", str(out)]
    assert main([*argv, "--samples", "40", "--seed", "3"]) == 0
    assert "gallery" in capsys.readouterr().out
    for image in images:
        for method in ("gradcam", "lime", "kernel_shap"):
            attribution = np.load(out / image.stem / f"{method}.npy")
            assert attribution.shape == (32, 32)
            assert (out / image.stem / f"{method}.png").read_bytes().startswith(b"\x89PNG")
    html = (out / "gallery.html").read_text()
    assert html.count("data:image/png;base64,") == 2 * 4
    summary = json.loads((out / "explanations.json").read_text())
    assert summary["methods"] == ["gradcam", "lime", "kernel_shap"]


def test_explaining_again_into_the_same_folder_leaves_no_stale_maps(run_dir, tmp_path, capsys):
    first, second = sorted((run_dir.parent / "data" / "images").glob("*.png"))[:2]
    out = tmp_path / "explained"
    base = ["explain", str(run_dir), "--method", "gradcam", "--out", str(out)]
    assert main([*base[:2], str(first), *base[2:]]) == 0
    assert main([*base[:2], str(second), *base[2:]]) == 0
    assert not (out / first.stem).exists() and (out / second.stem / "gradcam.npy").is_file()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    capsys.readouterr()
    assert main([*base[:2], str(second), "--method", "gradcam", "--out", str(foreign)]) == 1
    assert "did not write (notes.txt)" in " ".join(capsys.readouterr().err.split())
    assert (foreign / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--method", "gradcam,saliency"], "unknown explanation method 'saliency'; valid names: gradcam"),
        (["--target", "mass"], "unknown target label 'mass'; valid names: nodule"),
        (["--layer", "head"], "no module named 'head'"),
    ],
)
def test_bad_requests_exit_1_with_an_actionable_message(run_dir, capsys, extra, message):
    image = next((run_dir.parent / "data" / "images").glob("*.png"))
    assert main(["explain", str(run_dir), str(image), "--out", str(run_dir.parent / "x"), *extra]) == 1
    assert message in " ".join(capsys.readouterr().err.split())


def test_explain_without_images_asks_for_them(capsys):
    assert main(["explain"]) == 1
    assert "at least one image" in capsys.readouterr().err


def test_explain_eval_prints_the_score_table(run_dir, capsys):
    argv = ["explain-eval", str(run_dir), "--method", "gradcam,occlusion", "--max-images", "3", "--sanity-images", "2"]
    assert main(argv) == 0
    out = capsys.readouterr().out  # column headers may wrap in a narrow terminal; method names do not
    assert "explanation scores" in out and "gradcam" in out and "occlusion" in out and "pass" in out.lower()
    saved = json.loads((run_dir / "explain_eval.json").read_text())
    assert saved["n_images"] == 3 and set(saved["methods"]) == {"gradcam", "occlusion"}
