"""Classic baselines (HOG + logistic regression, LBP + gradient boosting): features, safe storage, and the whole
CLI path — train, evaluate, report, predict — on tiny synthetic data."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from radcnn.cli.app import main
from radcnn.errors import ModelError
from radcnn.models.checkpoint import load_model, save_model
from radcnn.models.classic import ClassicModel, hog_features, lbp_features
from radcnn.models.registry import create_model, model_names, neural_model_names
from radcnn.models.spec import ModelSpec

CLASSIC = ("hog_logreg", "lbp_hgb")


def synthetic(n: int, seed: int, side: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """Class 1: horizontal stripes (texture and gradient orientation differ); class 0: vertical stripes."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    grid = np.arange(side)
    images = []
    for y in labels:
        phase, period = rng.uniform(0, 2 * np.pi), rng.uniform(4, 7)
        wave = 0.5 + 0.3 * np.sin(2 * np.pi * grid / period + phase)
        image = np.tile(wave[:, None], (1, side)) if y else np.tile(wave[None, :], (side, 1))
        images.append(np.clip(image + rng.normal(0, 0.08, (side, side)), 0, 1))
    return (np.asarray(images)[:, None] * 255).astype(np.uint8), labels[:, None].astype(np.uint8)


@pytest.fixture(scope="module")
def stripes_npz(tmp_path_factory):
    path = tmp_path_factory.mktemp("classic") / "stripesmnist.npz"
    arrays = {}
    for split, (n, seed) in {"train": (60, 0), "val": (24, 1), "test": (24, 2)}.items():
        images, labels = synthetic(n, seed)
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images[:, 0], labels
    np.savez(path, **arrays)
    return path


def test_classic_models_are_registered_but_not_listed_as_networks():
    assert set(CLASSIC) <= set(model_names())
    assert not set(CLASSIC) & set(neural_model_names())


def test_features_have_fixed_length_and_respond_to_the_image():
    images, _ = synthetic(4, 0)
    x = images.astype(np.float32) / 255
    hog, lbp = hog_features(x), lbp_features(x)
    assert hog.shape[0] == lbp.shape[0] == 4 and np.isfinite(hog).all() and np.isfinite(lbp).all()
    # LBP: 4×4 regions × (10 + 18) uniform-code bins, each region's histogram sums to 1 per radius
    assert lbp.shape[1] == 16 * (10 + 18)
    np.testing.assert_allclose(lbp[:, :10].sum(axis=1), 1.0, rtol=1e-6)
    assert not np.allclose(hog[0], hog[1])


@pytest.mark.parametrize("name", CLASSIC)
def test_fitted_model_round_trips_through_safetensors(tmp_path, name):
    images, labels = synthetic(40, 3)
    x = images.astype(np.float32) / 255
    model = create_model(name).fit_arrays(x, labels.astype(np.float32), seed=0)
    before = model(torch.from_numpy(x)).numpy()
    save_model(model, ModelSpec(name, (28, 28), ("stripes",)), tmp_path / "m.safetensors")
    loaded, spec = load_model(tmp_path / "m.safetensors")
    np.testing.assert_allclose(loaded(torch.from_numpy(x)).numpy(), before, rtol=1e-6)
    assert spec.architecture == name and before.shape == (40, 1)


def test_unfitted_model_and_untrusted_types_are_refused(tmp_path):
    with pytest.raises(ModelError, match="has not been fitted"):
        ClassicModel("hog_logreg")(torch.zeros(1, 1, 28, 28))
    from skops.io import dumps

    evil = torch.from_numpy(np.frombuffer(dumps([torch.nn.Identity()]), dtype=np.uint8).copy())
    with pytest.raises(ModelError, match="does not trust: .*torch"):
        ClassicModel("hog_logreg").prepare_state({"estimators_skops": evil})


@pytest.mark.parametrize("name", CLASSIC)
def test_classic_baseline_through_the_cli(tmp_path, stripes_npz, name):
    run = tmp_path / name
    assert main(["train", "--data", str(stripes_npz), "--model", name, "--out", str(run), "--size", "28"]) == 0
    best = json.loads((run / "best.json").read_text())
    assert best["selection"] == "single fit" and best["val_auc"] > 0.9
    assert (run / "logs" / "metrics.csv").is_file() and (run / "split.csv").is_file()

    assert main(["evaluate", str(run), "--bootstrap", "20"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    label = next(iter(metrics["labels"].values()))
    assert label["metrics"]["roc_auc"] > 0.9

    assert main(["report", str(run)]) == 0
    assert (run / "report.html").stat().st_size > 1000

    images, labels = synthetic(4, 9)
    for k, image in enumerate(images):
        Image.fromarray(image[0]).save(tmp_path / f"img{k}_{labels[k, 0]}.png")
    out = tmp_path / "pred.json"
    assert (
        main(["predict", str(run), *[str(p) for p in sorted(tmp_path.glob("img*.png"))], "-f", "json", "-o", str(out)])
        == 0
    )
    rows = json.loads(out.read_text())
    assert len(rows) == 4


def test_gradient_explanations_are_refused_for_a_classic_model(capsys):
    from radcnn.explain.registry import ExplanationError
    from radcnn.explain.run import check_gradients

    with pytest.raises(
        ExplanationError, match="no gradients, so gradcam, integrated_gradients do not apply.*occlusion"
    ):
        check_gradients(ClassicModel("lbp_hgb"), ["gradcam", "integrated_gradients", "occlusion"])
    check_gradients(ClassicModel("lbp_hgb"), ["occlusion", "lime"])  # perturbation methods need no gradients
