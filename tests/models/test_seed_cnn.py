import pytest
import torch

from radcnn.errors import ModelError
from radcnn.models.registry import create_model
from radcnn.models.seed_cnn import SeedCNN


def test_parameter_count_at_28x28_matches_the_keras_seed():
    # conv 1*9*32+32=320, conv 32*9*64+64=18,496, conv 64*9*128+128=73,856, dense 128*1*1*512+512=66,048,
    # dense 512+1=513 → 159,233 (28 → 26 → 13 → 11 → 5 → 3 → 1 with valid padding and floor pooling)
    model = SeedCNN(input_size=(28, 28))
    assert sum(p.numel() for p in model.parameters()) == 159_233


@pytest.mark.parametrize("size", [(28, 28), (64, 64), (128, 96), (224, 224)])
def test_output_shape_for_several_input_sizes(size):
    model = create_model("seed_cnn", input_size=size)
    assert model(torch.zeros(3, 1, *size)).shape == (3, 1)


def test_layers_are_exactly_the_seed_architecture():
    model = SeedCNN(input_size=(64, 64))
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 128]
    assert all(c.kernel_size == (3, 3) and c.padding == (0, 0) for c in convs)
    pools = [m for m in model.modules() if isinstance(m, torch.nn.MaxPool2d)]
    assert len(pools) == 3 and all(p.kernel_size == 2 for p in pools)
    dense = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [d.out_features for d in dense] == [512, 1]


def test_too_small_input_is_a_clear_error():
    with pytest.raises(ModelError, match="at least 22"):
        SeedCNN(input_size=(16, 16))
