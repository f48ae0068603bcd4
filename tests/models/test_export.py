"""ONNX and TorchScript export: the parity check against PyTorch, the spec inside the file, nothing half-written."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from radcnn.errors import ConfigError, ModelError
from radcnn.models import export as export_module
from radcnn.models.checkpoint import SPEC_KEY
from radcnn.models.export import PARITY_TOLERANCE, TORCHSCRIPT_SPEC_FILE, export_model, parity_batch
from radcnn.models.onnx_runtime import OnnxRunner
from radcnn.models.registry import create_model
from radcnn.models.spec import ModelSpec


@pytest.fixture(scope="module")
def model_and_spec():
    torch.manual_seed(0)
    spec = ModelSpec("seed_cnn", (40, 40), ("nodule", "effusion"), thresholds=(0.3, 0.6))
    return create_model("seed_cnn", in_channels=1, num_outputs=2, input_size=(40, 40)).eval(), spec


def torch_logits(model, images):
    with torch.no_grad():
        return model(torch.from_numpy(images)).numpy()


def test_onnx_export_matches_pytorch_for_any_batch_and_carries_the_spec(model_and_spec, tmp_path):
    model, spec = model_and_spec
    result = export_model(model, spec, "onnx", tmp_path / "m.onnx")
    assert result.max_abs_diff <= PARITY_TOLERANCE and result.path.stat().st_size == result.size_bytes
    runner = OnnxRunner(result.path)
    assert ModelSpec.from_json(runner.metadata[SPEC_KEY]) == spec
    images = parity_batch(spec, n=7, seed=5)  # a batch size the export never saw
    np.testing.assert_allclose(runner(images), torch_logits(model, images), atol=PARITY_TOLERANCE)


def test_torchscript_export_matches_pytorch_and_carries_the_spec(model_and_spec, tmp_path):
    model, spec = model_and_spec
    result = export_model(model, spec, "torchscript", tmp_path / "m.pt")
    extra = {TORCHSCRIPT_SPEC_FILE: ""}
    loaded = torch.jit.load(str(result.path), _extra_files=extra)
    assert ModelSpec.from_json(extra[TORCHSCRIPT_SPEC_FILE]) == spec
    images = parity_batch(spec, n=3, seed=9)
    with torch.no_grad():
        np.testing.assert_allclose(loaded(torch.from_numpy(images)).numpy(), torch_logits(model, images), atol=1e-5)


def test_a_failed_parity_check_writes_nothing(model_and_spec, tmp_path, monkeypatch):
    model, spec = model_and_spec
    exact = export_module._torchscript_runner

    def drifting(data):  # an exported model whose logits are off by twice the tolerance
        run = exact(data)
        return lambda images: run(images) + 2 * PARITY_TOLERANCE

    monkeypatch.setattr(export_module, "_torchscript_runner", drifting)
    with pytest.raises(ModelError, match="above the fp32 tolerance"):
        export_model(model, spec, "torchscript", tmp_path / "m.pt")
    assert list(tmp_path.iterdir()) == []


def test_unknown_format_is_refused(model_and_spec, tmp_path):
    with pytest.raises(ConfigError, match="onnx, torchscript"):
        export_model(*model_and_spec, "tflite", tmp_path / "m.tflite")
