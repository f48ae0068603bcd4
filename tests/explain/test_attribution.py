import numpy as np
import pytest
import torch
from torch import nn

from radcnn.explain.attribution import (
    gradient_shap,
    gradient_shap_baselines,
    integrated_gradients,
    occlusion,
    occlusion_geometry,
)
from radcnn.explain.localisation import pointing_game
from radcnn.explain.perturb import blur, fill_like, seeded
from radcnn.explain.registry import ExplainSettings
from radcnn.explain.superpixel import grid_segments, kernel_shap, lime, superpixels
from radcnn.explain.targets import ScoredModel
from radcnn.models.spec import ModelSpec


class QuadrantModel(nn.Module):
    """logit = 10 × (mean of the top-left 8×8 quadrant − 0.5): depends on nothing else."""

    def forward(self, x):
        return 10 * (x[:, :, :8, :8].mean(dim=(1, 2, 3)) - 0.5)[:, None]


def _quadrant():
    spec = ModelSpec("quadrant", (16, 16), ("finding",))
    image = torch.full((1, 1, 16, 16), 0.8)
    return ScoredModel(QuadrantModel(), spec), image, torch.zeros(1, dtype=torch.long)


def test_integrated_gradients_is_complete_logit_change_from_black():
    scored, image, target = _quadrant()
    attr = integrated_gradients(scored, image, target, ExplainSettings(ig_steps=16), [0])[0]
    expected = float(scored.model(image) - scored.model(torch.zeros_like(image)))
    assert attr.sum() == pytest.approx(expected, rel=1e-4)
    assert np.all(attr[8:, :] == 0) and np.all(attr[:, 8:] == 0), "pixels the model ignores get nothing"


def test_integrated_gradients_on_the_trained_model_sums_to_the_logit_change(trained, true_positives):
    model, spec = trained
    images = torch.from_numpy(true_positives[0][:3])
    attr = integrated_gradients(
        ScoredModel(model, spec), images, torch.zeros(3, dtype=torch.long), ExplainSettings(), [0] * 3
    )
    with torch.no_grad():
        change = (model(images) - model(torch.zeros_like(images)))[:, 0].numpy()
    np.testing.assert_allclose(attr.sum(axis=(1, 2)), change, rtol=0.1)


def test_occlusion_only_credits_pixels_whose_patches_touch_what_the_model_reads():
    scored, image, target = _quadrant()
    settings = ExplainSettings(occlusion_window=4, occlusion_stride=4, fill="zero")
    attr = occlusion(scored, image, target, settings, [0])[0]
    # Each 4×4 patch inside the quadrant drops the mean by 0.8/4 → logit by 2: probability from σ(3) to σ(1).
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    np.testing.assert_allclose(attr[:8, :8], sigmoid(3.0) - sigmoid(1.0), rtol=1e-5)
    assert np.all(attr[8:, :] == 0) and np.all(attr[:, 8:] == 0)
    assert occlusion_geometry(224, 224, ExplainSettings()) == (28, 14)


def test_gradient_shap_is_seeded_and_uses_three_baselines():
    scored, image, target = _quadrant()
    assert gradient_shap_baselines(image).shape == (3, 1, 16, 16)
    a = gradient_shap(scored, image, target, ExplainSettings(n_samples=8), [11])
    b = gradient_shap(scored, image, target, ExplainSettings(n_samples=8), [11])
    np.testing.assert_array_equal(a, b)


def test_seeded_restores_the_callers_random_state():
    np.random.seed(123)
    torch.manual_seed(123)
    expected_np, expected_torch = np.random.random(), torch.rand(1)
    np.random.seed(123)
    torch.manual_seed(123)
    with seeded(5):
        np.random.random()
        torch.rand(3)
    assert np.random.random() == expected_np and torch.equal(torch.rand(1), expected_torch)


def test_fills():
    images = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    mean = fill_like(images, "mean")
    torch.testing.assert_close(mean[:, :, 0, 0], images.mean(dim=(2, 3)))
    assert torch.all(fill_like(images, "zero") == 0)
    blurred = fill_like(images, "blur")
    assert blurred.std() < images.std() / 3 and abs(float(blurred.mean() - images.mean())) < 0.02
    flat = torch.full((1, 1, 16, 16), 0.3)
    torch.testing.assert_close(blur(flat), flat)


def test_superpixels_follow_the_image_and_fall_back_to_a_grid():
    yy, xx = np.mgrid[:64, :64]
    image = 0.3 + 0.5 * ((yy - 20) ** 2 + (xx - 40) ** 2 < 36)
    segments = superpixels(image, n_segments=50)
    assert segments.min() == 0 and 25 <= segments.max() + 1 <= 80
    inside = segments[20, 40]
    assert (segments == inside).sum() < 400, "the bright disc is its own small segment"
    # Pure noise with a tiny compactness makes SLIC merge everything into one segment: a grid is used instead.
    noise = np.random.default_rng(0).random((64, 64))
    fallback = superpixels(noise, n_segments=64, compactness=0.001)
    np.testing.assert_array_equal(fallback, grid_segments((64, 64), 64))
    assert fallback.max() + 1 == 64


@pytest.mark.parametrize("method", [lime, kernel_shap])
def test_superpixel_maps_are_constant_per_segment_and_find_the_blob(trained, true_positives, method):
    model, spec = trained
    images, masks = true_positives
    images, masks = images[:5], masks[:5]
    settings = ExplainSettings(n_samples=80)
    maps = method(
        ScoredModel(model, spec), torch.from_numpy(images), torch.zeros(5, dtype=torch.long), settings, list(range(5))
    )
    segments = superpixels(images[0, 0], settings.n_segments, settings.compactness)
    for label in np.unique(segments):
        assert np.ptp(maps[0][segments == label]) == 0
    assert np.mean([pointing_game(m, k) for m, k in zip(maps, masks, strict=True)]) >= 0.8


def test_channels_last_speed_up_is_temporary_and_changes_no_value(trained):
    from radcnn.explain.targets import channels_last

    model, _ = trained
    before = {n: (p.data_ptr(), p.stride()) for n, p in model.named_parameters()}
    x = torch.rand(4, 1, 48, 48, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = model(x)
        with channels_last(model):
            assert model.features[0].weight.stride() == (9, 1, 3, 1), "1-channel weights are restrided too"
            assert model.features[3].weight.is_contiguous(memory_format=torch.channels_last)
            fast = model(x)
    torch.testing.assert_close(fast, reference, rtol=1e-4, atol=1e-5)
    assert {n: (p.data_ptr(), p.stride()) for n, p in model.named_parameters()} == before
