import numpy as np
import pytest
import torch

from radcnn.errors import UnknownNameError
from radcnn.explain.registry import (
    DISPLAY_ORDER,
    ExplainSettings,
    ExplanationError,
    explainer_infos,
    explainer_names,
    get_explainer,
    parse_methods,
)
from radcnn.explain.targets import ScoredModel
from radcnn.models.registry import create_model
from radcnn.models.spec import ModelSpec

ALL = list(DISPLAY_ORDER)


def test_every_method_of_the_issue_is_registered_in_display_order():
    assert explainer_names() == ALL
    infos = {i.name: i for i in explainer_infos()}
    assert {n for n, i in infos.items() if i.extra["needs_conv"]} == {"gradcam", "gradcam_pp"}
    assert {n for n, i in infos.items() if i.extra["stochastic"]} == {"gradient_shap", "lime", "kernel_shap"}
    assert all(i.summary for i in infos.values())


def test_parse_methods_accepts_lists_commas_and_all():
    assert parse_methods("gradcam, lime") == ["gradcam", "lime"]
    assert parse_methods(["lime", "lime", "gradcam"]) == ["lime", "gradcam"]
    assert parse_methods("all") == ALL


def test_unknown_method_lists_the_valid_names():
    with pytest.raises(UnknownNameError) as info:
        parse_methods("gradcam,shap")
    message = str(info.value)
    assert "'shap'" in message
    assert all(name in message for name in ALL)


def test_empty_method_list_is_an_error():
    with pytest.raises(ExplanationError, match="no explanation method"):
        parse_methods(" , ")


@pytest.mark.parametrize("bad", [dict(fill="black"), dict(n_samples=1), dict(ig_steps=1), dict(n_segments=1)])
def test_settings_are_validated(bad):
    with pytest.raises(ExplanationError):
        ExplainSettings(**bad)


@pytest.fixture(scope="module")
def untrained():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        model = create_model("seed_cnn", input_size=(32, 32)).eval()
    images = torch.from_numpy(np.random.default_rng(0).uniform(0.2, 0.8, (2, 1, 32, 32)).astype(np.float32))
    return ScoredModel(model, ModelSpec("seed_cnn", (32, 32), ("nodule",))), images


@pytest.mark.parametrize("name", ALL)
def test_every_method_returns_finite_maps_at_input_resolution_deterministically(untrained, name):
    scored, images = untrained
    settings = ExplainSettings(n_samples=40, n_segments=16, ig_steps=8)
    targets = torch.zeros(2, dtype=torch.long)
    run = get_explainer(name).builder
    first = run(scored, images, targets, settings, [3, 4])
    again = run(scored, images, targets, settings, [3, 4])
    assert first.shape == (2, 32, 32) and first.dtype == np.float32
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(first, again)
    if get_explainer(name).info.extra["stochastic"]:
        other = run(scored, images, targets, settings, [5, 6])
        assert not np.array_equal(first, other), "a different seed should draw different samples"
