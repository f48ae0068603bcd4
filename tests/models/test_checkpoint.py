import pytest
import torch

from radcnn.errors import ModelError
from radcnn.models.checkpoint import load_model, read_spec, save_model
from radcnn.models.registry import create_model
from radcnn.models.spec import ModelSpec


def _spec(**kw):
    values = dict(architecture="seed_cnn", input_size=(32, 32), label_names=("nodule",), thresholds=(0.37,))
    values.update(kw)
    return ModelSpec(**values)


def test_round_trip_keeps_weights_and_spec(tmp_path):
    model = create_model("seed_cnn", input_size=(32, 32))
    path = save_model(model, _spec(), tmp_path / "m.safetensors")
    loaded, spec = load_model(path)
    assert spec == _spec()
    x = torch.rand(2, 1, 32, 32)
    model.eval()
    assert torch.equal(model(x), loaded(x))


def test_saved_weights_are_a_copy_not_a_reference(tmp_path):
    model = create_model("seed_cnn", input_size=(32, 32))
    path = save_model(model, _spec(), tmp_path / "m.safetensors")
    before = load_model(path)[0].state_dict()["classifier.3.bias"].clone()
    with torch.no_grad():
        model.classifier[3].bias.add_(1.0)
    assert torch.equal(load_model(path)[0].state_dict()["classifier.3.bias"], before)


def test_weights_that_do_not_fit_name_the_tensors(tmp_path):
    model = create_model("seed_cnn", input_size=(64, 64))
    path = save_model(model, _spec(input_size=(64, 64)), tmp_path / "m.safetensors")
    from safetensors.torch import load_file, save_file

    state = load_file(str(path))
    state["classifier.1.weight"] = torch.zeros(512, 10)
    save_file(
        state, str(tmp_path / "bad.safetensors"), metadata={"radcnn.model_spec": _spec(input_size=(64, 64)).to_json()}
    )
    with pytest.raises(ModelError, match=r"classifier\.1\.weight"):
        load_model(tmp_path / "bad.safetensors")


def test_not_a_model_file(tmp_path):
    bogus = tmp_path / "x.safetensors"
    bogus.write_bytes(b"hello")
    with pytest.raises(ModelError, match="not a radcnn model file"):
        read_spec(bogus)
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "missing.safetensors")


def test_spec_default_thresholds_and_validation():
    assert ModelSpec(architecture="seed_cnn", input_size=(28, 28), label_names=("a", "b")).thresholds == (0.5, 0.5)
    with pytest.raises(ModelError):
        ModelSpec(architecture="seed_cnn", input_size=(28, 28), label_names=("a",), thresholds=(0.1, 0.2))
