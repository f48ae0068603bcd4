import json

import numpy as np
import pytest
import torch
from torch import nn

from radcnn.errors import DataError, ImageReadError, UnknownNameError
from radcnn.explain import explain_images, explain_run_gallery, write_explanations
from radcnn.explain.inputs import normalise_array
from radcnn.models.spec import ModelSpec


class TwoLabelNet(nn.Module):
    """Output 0 reads the left half, output 1 the right half: the two targets must give different maps."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.fill_(1 / 9)
            self.conv.bias.zero_()

    def forward(self, x):
        f = self.conv(x)
        w = x.shape[-1] // 2
        return torch.stack([f[:, 0, :, :w].mean(dim=(1, 2)), f[:, 1, :, w:].mean(dim=(1, 2))], dim=1) * 4 - 2


def _image(size=32):
    return np.random.default_rng(0).uniform(0.2, 0.8, (size, size)).astype(np.float32)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_target_is_chosen_by_label_name_for_multi_output_models(task):
    spec = ModelSpec("two", (32, 32), ("left", "right"), task=task, thresholds=(0.5, 0.5))
    left = explain_images(TwoLabelNet(), spec, _image(), "integrated_gradients", target="left")[0]
    right = explain_images(TwoLabelNet(), spec, _image(), "integrated_gradients", target="right")[0]
    assert (left.target, left.target_index, right.target_index) == ("left", 0, 1)
    assert (
        np.abs(left.maps["integrated_gradients"][:, 16:]).sum()
        < np.abs(left.maps["integrated_gradients"][:, :16]).sum()
    )
    assert (
        np.abs(right.maps["integrated_gradients"][:, :16]).sum()
        < np.abs(right.maps["integrated_gradients"][:, 16:]).sum()
    )
    if task == "multiclass":
        assert left.probability + right.probability == pytest.approx(1.0, abs=1e-6)
    default = explain_images(TwoLabelNet(), spec, _image(), "occlusion")[0]
    assert default.target in ("left", "right"), "default: the most probable label"


def test_unknown_target_label_lists_the_labels():
    spec = ModelSpec("two", (32, 32), ("left", "right"), thresholds=(0.5, 0.5))
    with pytest.raises(UnknownNameError, match="'middle'; valid names: left, right"):
        explain_images(TwoLabelNet(), spec, _image(), "gradcam", target="middle")


def test_images_of_the_wrong_size_or_range_are_resized_and_normalised_with_warnings(trained, caplog):
    model, spec = trained
    big = np.kron(_image(24), np.ones((4, 4), np.float32)) * 4000.0  # 96×96, in "HU-like" units
    result = explain_images(model, spec, big, "gradcam")[0]
    assert result.image.shape == (48, 48) and result.image.min() >= 0.0 and result.image.max() <= 1.0
    assert any("outside the expected [0, 1]" in w for w in result.warnings)
    assert any("resized" in w for w in result.warnings)
    assert "outside the expected [0, 1]" in caplog.text
    eight_bit = (_image(48) * 255).astype(np.uint8)
    image, warnings = normalise_array(eight_bit, "x")
    assert image.dtype == np.float32 and image.max() <= 1.0 and "1/255" in warnings[0]
    with pytest.raises(DataError, match="NaN"):
        normalise_array(np.full((4, 4), np.nan), "x")
    with pytest.raises(DataError, match="2-D grayscale"):
        normalise_array(np.zeros((3, 8, 8)), "x")


def test_batched_explanations_are_deterministic_and_report_progress(trained, held_out):
    model, spec = trained
    calls = []
    first = explain_images(
        model, spec, held_out.images[:3], "gradcam,lime", seed=4, progress=lambda d, t: calls.append((d, t))
    )
    again = explain_images(model, spec, held_out.images[:3], ["gradcam", "lime"], seed=4)
    assert len(first) == 3 and calls[-1] == (6, 6)
    for a, b in zip(first, again, strict=True):
        for method in ("gradcam", "lime"):
            np.testing.assert_array_equal(a.maps[method], b.maps[method])
        assert set(a.seconds) == {"gradcam", "lime"}


def test_files_are_read_like_predict_and_unreadable_ones_can_be_skipped(trained, run_dir, tmp_path):
    model, spec = trained
    images = sorted((run_dir.parent / "data" / "images").glob("*.png"))[:2]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    with pytest.raises(ImageReadError):
        explain_images(model, spec, [images[0], broken], "gradcam")
    from radcnn.explain.run import explain_batch

    results, skipped = explain_batch(model, spec, [images[0], broken, images[1]], "gradcam", on_error="skip")
    assert [r.source for r in results] == [str(images[0]), str(images[1])]
    assert skipped[0][0] == str(broken)


def test_written_outputs(trained, held_out, tmp_path):
    model, spec = trained
    results = explain_images(model, spec, held_out.images[:2], "gradcam,occlusion")
    out = write_explanations(results, tmp_path / "out")
    summary = json.loads(out.summary.read_text())
    assert summary["methods"] == ["gradcam", "occlusion"]
    assert [i["folder"] for i in summary["images"]] == ["array_0", "array_1"]
    for folder, methods in out.files.items():
        for method, files in methods.items():
            np.testing.assert_array_equal(np.load(files["npy"]), results[int(folder[-1])].maps[method])
            assert files["png"].read_bytes().startswith(b"\x89PNG")
    html = out.gallery.read_text()
    assert html.count("data:image/png;base64,") == 2 * 3
    assert not list((tmp_path / "out").rglob("*.tmp")), "no temporary files left behind"


def test_run_gallery_for_the_evaluation_report(run_dir, tmp_path):
    out = explain_run_gallery(run_dir, tmp_path / "gallery", n_images=4, methods="gradcam,integrated_gradients")
    summary = json.loads(out.summary.read_text())
    assert len(summary["images"]) == 4
    assert all(i["source"].endswith(".png") for i in summary["images"])
    html = out.gallery.read_text()
    assert "truth: nodule = 1" in html and "truth: nodule = 0" in html
