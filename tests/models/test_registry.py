import pytest
import torch

from radcnn.errors import UnknownNameError
from radcnn.models.registry import create_model, model_names


def test_registry_lists_the_seed_and_monai_models():
    assert {"seed_cnn", "resnet18", "resnet50", "densenet121", "efficientnet_b0"} <= set(model_names())


@pytest.mark.parametrize("name", ["seed_cnn", "resnet18", "efficientnet_b0"])
@pytest.mark.parametrize("outputs", [1, 3])
def test_models_take_one_channel_and_give_the_requested_outputs(name, outputs):
    model = create_model(name, num_outputs=outputs, input_size=(64, 64)).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 1, 64, 64)).shape == (2, outputs)


def test_unknown_model_lists_valid_names():
    with pytest.raises(UnknownNameError) as info:
        create_model("vgg99")
    assert "seed_cnn" in str(info.value) and "vgg99" in str(info.value)
