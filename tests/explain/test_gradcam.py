import numpy as np
import pytest
import torch
from torch import nn

from radcnn.explain.gradcam import cell_geometry, find_target_layer, gradcam, gradcam_pp, upsample
from radcnn.explain.localisation import mass_inside, pointing_game
from radcnn.explain.registry import ExplainSettings, ExplanationError
from radcnn.explain.run import explain_images
from radcnn.explain.targets import ScoredModel
from radcnn.models.registry import create_model, neural_model_names
from radcnn.models.spec import ModelSpec

EXPECTED_LAYER = {
    "seed_cnn": "features.6",
    "resnet18": "layer4",
    "resnet50": "layer4",
    "densenet121": "features",
    "efficientnet_b0": "_bn1",
}


@pytest.mark.parametrize("name", neural_model_names())
def test_target_layer_is_found_for_every_registered_model_and_gradcam_runs(name):
    model = create_model(name, input_size=(32, 32)).eval()
    assert find_target_layer(model, (1, 32, 32)) == EXPECTED_LAYER[name]
    scored = ScoredModel(model, ModelSpec(name, (32, 32), ("nodule",)))
    image = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    cam = gradcam(scored, image, torch.zeros(1, dtype=torch.long), ExplainSettings(), [0])
    assert cam.shape == (1, 32, 32) and (cam >= 0).all() and np.isfinite(cam).all()


def test_layer_can_be_chosen_by_name_and_bad_names_are_explained():
    model = create_model("seed_cnn", input_size=(48, 48)).eval()
    assert find_target_layer(model, (1, 48, 48), "features.3") == "features.3"
    with pytest.raises(ExplanationError, match="no module named 'features.99'.*features.6"):
        find_target_layer(model, (1, 48, 48), "features.99")
    with pytest.raises(ExplanationError, match="does not output a .N, C, h, w. feature map"):
        find_target_layer(model, (1, 48, 48), "classifier.1")


def test_model_without_conv_layer_names_the_methods_that_apply():
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(16 * 16, 8), nn.ReLU(), nn.Linear(8, 1))
    spec = ModelSpec("mlp", (16, 16), ("nodule",))
    image = np.full((16, 16), 0.5, np.float32)
    with pytest.raises(ExplanationError) as info:
        explain_images(mlp, spec, image, "gradcam_pp")
    message = str(info.value)
    assert "no convolutional layer" in message
    assert "integrated_gradients" in message and "lime" in message and "gradcam," not in message
    # The methods it names do work on that model.
    maps = explain_images(mlp, spec, image, "integrated_gradients,occlusion")[0].maps
    assert set(maps) == {"integrated_gradients", "occlusion"}


def test_cell_geometry_matches_the_seed_cnn_receptive_fields_by_hand():
    # Valid 3×3 convs and 2×2 pools: cell q of the third conv is centred on input pixel 8.5 + 4q.
    model = create_model("seed_cnn", input_size=(48, 48)).eval()
    (row0, row_step), (col0, col_step) = cell_geometry(model, "features.6", (1, 48, 48))
    assert (row0, row_step, col0, col_step) == pytest.approx((8.5, 4.0, 8.5, 4.0))
    # Zero-padded networks tile the whole image: their cells' fields hit the border, so the map is stretched.
    assert cell_geometry(create_model("resnet18").eval(), "layer4", (1, 64, 64)) is None


def test_upsampling_puts_a_hot_cell_on_its_receptive_field_centre():
    cam = torch.zeros(1, 1, 8, 8)
    cam[0, 0, 2, 5] = 1.0
    aligned = upsample(cam, (48, 48), ((8.5, 4.0), (8.5, 4.0)))[0, 0]
    row, col = np.unravel_index(int(aligned.argmax()), aligned.shape)
    assert abs(row + 0.5 - (8.5 + 4 * 2)) <= 1 and abs(col + 0.5 - (8.5 + 4 * 5)) <= 1
    # Without geometry it is Captum's plain bilinear stretch.
    stretched = upsample(cam, (48, 48), None)
    from captum.attr import LayerAttribution

    torch.testing.assert_close(stretched, LayerAttribution.interpolate(cam, (48, 48), interpolate_mode="bilinear"))


@pytest.mark.parametrize("method", [gradcam, gradcam_pp])
def test_cam_on_the_trained_model_puts_most_attribution_inside_the_lesion_boxes(trained, true_positives, method):
    model, spec = trained
    images, masks = true_positives
    targets = torch.zeros(len(images), dtype=torch.long)
    cams = method(ScoredModel(model, spec), torch.from_numpy(images), targets, ExplainSettings(), [0] * len(images))
    hits = np.mean([pointing_game(c, m) for c, m in zip(cams, masks, strict=True)])
    mass = np.nanmean([mass_inside(c, m) for c, m in zip(cams, masks, strict=True)])
    assert hits >= 0.8
    assert mass > 8 * masks.mean(), "far more mass in the boxes than their share of the image"
    if method is gradcam:
        assert mass > 0.5, f"most Grad-CAM mass should lie in the boxes (got {mass:.2f})"
