"""Test-time augmentation: the views, the averaging, and the same result on every prediction path."""

import numpy as np
import pytest
import torch
from torch import nn

from radcnn.errors import ConfigError, ModelError
from radcnn.models.inference import predict_probabilities, shift_replicate, tta_views
from radcnn.models.spec import ModelSpec


class MeanModel(nn.Module):
    """Logit = 8 × (mean pixel − 0.3): invariant to flips, and to shifts of images with a constant border."""

    def forward(self, x):
        return 8 * (x.mean(dim=(1, 2, 3)) - 0.3)[:, None]


class CornerModel(nn.Module):
    """Logit = 4 × top-left pixel − 1: changes under every view, so the averaging can be checked by hand."""

    def forward(self, x):
        return 4 * x[:, :, 0, 0] - 1


def bordered_images(n=5, side=12, seed=0):
    images = np.zeros((n, 1, side, side), np.float32)
    images[:, :, 2:-2, 2:-2] = np.random.default_rng(seed).random((n, 1, side - 4, side - 4))
    return images


@pytest.mark.parametrize("tta", ["flip", "flip_shift"])
def test_tta_equals_plain_prediction_for_an_invariant_model(tta):
    images = bordered_images()
    plain = predict_probabilities(MeanModel(), images)
    np.testing.assert_allclose(predict_probabilities(MeanModel(), images, tta=tta), plain, rtol=1e-6)


def test_tta_averages_the_probabilities_of_each_view():
    images = np.random.default_rng(1).random((3, 1, 6, 6)).astype(np.float32)
    x = images[:, 0]

    def p(v):
        return 1 / (1 + np.exp(-(4 * v - 1)))

    flip = (p(x[:, 0, 0]) + p(x[:, 0, -1])) / 2
    np.testing.assert_allclose(predict_probabilities(CornerModel(), images, tta="flip")[:, 0], flip, rtol=1e-5)
    # one-pixel shifts with the edge repeated: down/right keep the corner, up takes row 1, left takes column 1
    views = [x[:, 0, 0], x[:, 0, -1], x[:, 0, 1], x[:, 0, 0], x[:, 1, 0], x[:, 0, 0]]
    expected = np.mean([p(v) for v in views], axis=0)
    got = predict_probabilities(CornerModel(), images, tta="flip_shift")[:, 0]
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_shift_replicate_repeats_the_edge():
    x = torch.arange(9, dtype=torch.float32).reshape(1, 1, 3, 3)
    assert shift_replicate(x, 0, 1)[0, 0].tolist() == [[0, 0, 1], [3, 3, 4], [6, 6, 7]]
    assert shift_replicate(x, -1, 0)[0, 0].tolist() == [[3, 4, 5], [6, 7, 8], [6, 7, 8]]
    assert len(tta_views(x, "flip_shift")) == 6 and len(tta_views(x, "none")) == 1


def test_predictor_applies_the_spec_tta_like_predict_probabilities():
    from radcnn.serve.predictor import Predictor

    images = np.random.default_rng(2).random((4, 1, 6, 6)).astype(np.float32)
    spec = ModelSpec("corner", (6, 6), ("finding",), tta="flip_shift")
    served = Predictor(CornerModel(), spec).predict_batch(images)
    np.testing.assert_allclose(served, predict_probabilities(CornerModel(), images, tta="flip_shift"), rtol=1e-5)


def test_unknown_tta_is_refused():
    with pytest.raises(ConfigError, match="flip_shift"):
        tta_views(torch.zeros(1, 1, 4, 4), "rotate")
    with pytest.raises(ModelError, match="tta"):
        ModelSpec("x", (4, 4), ("a",), tta="rotate")
