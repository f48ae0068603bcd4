"""Predictor: one record per input with probabilities, thresholds, decisions, model version, warnings, heat maps."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from radcnn.errors import ConfigError, ImageReadError
from radcnn.serve.predictor import DISPLAY_MAX_SIDE, Predictor, weights_digest


@pytest.fixture(scope="module")
def predictor(run_dir):
    return Predictor.from_path(run_dir)


def test_bytes_and_files_give_the_same_answer(predictor, phantom_dicoms):
    path = phantom_dicoms[3]
    from_file = predictor.predict_files([path])[0]
    from_bytes = predictor.predict_bytes(path.read_bytes(), "anything.png")  # the name never picks the reader
    assert from_bytes.probabilities == from_file.probabilities
    assert from_bytes.decisions == from_file.decisions and from_bytes.path == "anything.png"


def test_decisions_apply_the_stored_threshold(predictor, phantom_dicoms):
    threshold = predictor.spec.thresholds[0]
    for p in predictor.predict_files(phantom_dicoms):
        assert p.thresholds == {"nodule": pytest.approx(threshold)}
        assert p.decisions["nodule"] == (p.probabilities["nodule"] >= threshold)
        assert p.model.name == "run" and p.model.architecture == "seed_cnn"


def test_model_version_is_a_digest_of_the_weights(run_dir, predictor):
    again = Predictor.from_path(run_dir)
    assert again.info.version == predictor.info.version and len(predictor.info.version) == 12
    model = again.model
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] += 1e-3
    assert weights_digest(model) != predictor.info.version


def test_files_are_scored_in_batches_with_progress_and_errors_per_policy(predictor, phantom_dicoms, tmp_path):
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"DICM but not really")
    paths = [*phantom_dicoms[:2], bad, *phantom_dicoms[2:4]]
    seen = []
    results = predictor.predict_files(paths, on_error="skip", batch_size=2, progress=lambda d, t: seen.append((d, t)))
    assert [r.path for r in results] == [str(p) for p in paths]
    assert results[2].error and "not a readable image" in results[2].error and results[2].probabilities == {}
    assert seen == [(2, 5), (4, 5), (5, 5)]
    assert [r.probabilities for r in results[:2]] == [r.probabilities for r in predictor.predict_files(paths[:2])]
    with pytest.raises(ImageReadError, match="bad.dcm"):
        predictor.predict_files(paths)


def test_colour_upload_is_warned_about(predictor):
    rgb = np.zeros((80, 80, 3), np.uint8)
    rgb[..., 0] = 200
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    prediction = predictor.predict_bytes(buffer.getvalue())
    assert any("colour image" in w for w in prediction.warnings)


@pytest.mark.parametrize("method", ["gradcam", "gradcam_pp", "integrated_gradients"])
def test_heat_maps_are_unit_scaled_at_input_size(predictor, phantom_dicoms, method):
    prediction = predictor.predict_bytes(phantom_dicoms[0].read_bytes(), heatmap=method, keep_image=True)
    values = prediction.heatmap.values
    assert values.shape == (48, 48) and values.min() >= 0 and values.max() == pytest.approx(1.0)
    assert prediction.heatmap.method == method and prediction.heatmap.label == "nodule"
    assert prediction.image.shape == (64, 64) and max(prediction.image.shape) <= DISPLAY_MAX_SIDE


def test_unknown_heat_map_method_and_backend_are_refused(predictor, run_dir):
    with pytest.raises(ConfigError, match="gradcam_pp"):
        predictor.heatmaps(np.zeros((1, 1, 48, 48), np.float32), "lime")
    with pytest.raises(ConfigError, match="torch, onnx"):
        Predictor.from_path(run_dir, backend="tensorrt")


def test_onnx_backend_agrees_with_pytorch(run_dir, predictor, phantom_dicoms):
    onnx = Predictor.from_path(run_dir, backend="onnx")
    ours = [p.probabilities["nodule"] for p in onnx.predict_files(phantom_dicoms)]
    reference = [p.probabilities["nodule"] for p in predictor.predict_files(phantom_dicoms)]
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    assert onnx.info.version == predictor.info.version
