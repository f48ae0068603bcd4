import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from radcnn.explain.gradcam import gradcam
from radcnn.explain.registry import ExplainSettings
from radcnn.explain.sanity import cascade_steps, cascading_randomization, parameter_layers, spearman
from radcnn.explain.targets import ScoredModel


def test_spearman_matches_scipy_and_constant_maps_count_as_uncorrelated():
    rng = np.random.default_rng(0)
    a, b = rng.random((6, 6)), rng.random((6, 6))
    b[0, :3] = b[0, 0]  # ties
    assert spearman(a, b) == pytest.approx(spearmanr(a.ravel(), b.ravel()).statistic)
    assert spearman(a, a) == pytest.approx(1.0)
    assert spearman(a, np.zeros((6, 6))) == 0.0


def test_layers_are_randomised_from_the_output_side(trained):
    model, _ = trained
    assert parameter_layers(model) == ["classifier.3", "classifier.1", "features.6", "features.3", "features.0"]
    assert cascade_steps(5, 6) == [0, 1, 2, 3, 4]
    steps = cascade_steps(240, 6)
    assert steps[0] == 0 and steps[-1] == 239 and len(steps) == 6


def _gradcam_maps(spec):
    def maps(model, images):
        targets = torch.zeros(len(images), dtype=torch.long)
        return gradcam(ScoredModel(model, spec), images, targets, ExplainSettings(), [0] * len(images))

    return maps


def test_sanity_check_separates_the_trained_model_from_randomised_ones(trained, true_positives):
    model, spec = trained
    images = torch.from_numpy(true_positives[0][:4])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = cascading_randomization(model, images, _gradcam_maps(spec))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), "the trained model is untouched"
    assert result.layers == ("classifier.3", "classifier.1", "features.6", "features.3", "features.0")
    assert result.per_image.shape == (5, 4)
    # Re-initialising the output layer alone already changes the maps; with every layer random they are unrelated.
    assert result.correlations[0] < 0.9
    assert result.final_correlation < 0.5 and result.passed
    fewer = cascading_randomization(model, images, _gradcam_maps(spec), max_steps=2)
    assert fewer.layers == ("classifier.3", "features.0")
    np.testing.assert_allclose(fewer.correlations, result.correlations[[0, -1]])


def test_a_map_that_ignores_the_model_fails_the_sanity_check(trained, true_positives):
    model, _ = trained
    images = torch.from_numpy(true_positives[0][:3])

    def edge_detector(_model, batch):  # depends on the image only
        x = batch[:, 0].numpy()
        return np.abs(np.gradient(x, axis=1)) + np.abs(np.gradient(x, axis=2))

    result = cascading_randomization(model, images, edge_detector)
    np.testing.assert_allclose(result.correlations, 1.0)
    assert not result.passed
