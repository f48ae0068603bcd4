import numpy as np
import pytest
import torch
from sklearn.metrics import auc

from radcnn.explain.faithfulness import curve_auc, faithfulness_curves, pixel_order, step_counts
from radcnn.explain.perturb import blur
from radcnn.explain.registry import DISPLAY_ORDER, ExplainSettings
from radcnn.explain.run import explain_images
from radcnn.explain.targets import ScoredModel


def test_curve_auc_matches_scikit_learn():
    rng = np.random.default_rng(0)
    x = np.sort(rng.random(30))
    y = rng.random(30)
    assert curve_auc(x, y) == pytest.approx(auc(x, y))
    assert curve_auc([0, 0.5, 1], [1, 0, 0]) == pytest.approx(0.25)


def test_pixel_order_is_descending_with_random_tie_breaks():
    rng = np.random.default_rng(0)
    order = pixel_order(np.array([[0.1, 0.9], [0.5, 0.5]]), rng)
    assert order[0] == 1 and set(order[1:3]) == {2, 3} and order[3] == 0
    ties = {tuple(pixel_order(np.zeros(6), np.random.default_rng(s))) for s in range(20)}
    assert len(ties) > 1, "equal values are ordered at random"
    np.testing.assert_array_equal(step_counts(10, 4), [0, 2, 5, 8, 10])


def _two_pixel_score(batch: np.ndarray) -> np.ndarray:
    """A hand-made "model": the mean of pixels (0, 0) and (0, 1)."""
    return batch[:, 0, 0, :2].mean(axis=1)


def test_deletion_and_insertion_curves_by_hand():
    image = np.full((1, 4, 4), 0.5, np.float32)
    image[0, 0, :2] = 1.0
    attribution = np.arange(16, dtype=np.float32)[::-1].reshape(4, 4)  # ranks (0,0) first, then (0,1), ...
    curves = faithfulness_curves(_two_pixel_score, image, attribution, steps=16, fill="zero", n_random=4)
    # Deleting (0,0) then (0,1) into zeros: 1 → 0.5 → 0 and then flat.
    np.testing.assert_allclose(curves.deletion[:4], [1.0, 0.5, 0.0, 0.0])
    assert curves.deletion_auc == pytest.approx((1 / 16) * ((1 + 0.5) / 2 + (0.5 + 0) / 2))
    # Insertion starts from the blurred image and puts the two pixels back first.
    b = blur(torch.from_numpy(image)[None])[0, 0].numpy()
    np.testing.assert_allclose(curves.insertion[:3], [(b[0, 0] + b[0, 1]) / 2, (1 + b[0, 1]) / 2, 1.0], rtol=1e-6)
    assert curves.deletion_beats_random and curves.insertion_beats_random
    # A map that ranks those pixels last is worse than random.
    worse = faithfulness_curves(_two_pixel_score, image, -attribution, steps=16, fill="zero", n_random=4)
    assert not worse.deletion_beats_random and not worse.insertion_beats_random


def test_a_flat_map_scores_like_a_random_ordering():
    image = np.random.default_rng(1).random((1, 8, 8)).astype(np.float32)
    curves = faithfulness_curves(_two_pixel_score, image, np.zeros((8, 8)), steps=8, n_random=30, seed=3)
    assert curves.deletion_auc == pytest.approx(curves.deletion_auc_random, abs=0.1)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="does not match"):
        faithfulness_curves(_two_pixel_score, np.zeros((1, 4, 4)), np.zeros((3, 3)))


def test_every_method_deletes_better_than_random_on_the_trained_model(trained, true_positives):
    model, spec = trained
    images = true_positives[0][:4]
    scored = ScoredModel(model, spec)
    explanations = explain_images(model, spec, images, "all", settings=ExplainSettings(n_samples=60))

    def score(batch):
        return scored.target_scores(batch, [0] * len(batch))

    for method in DISPLAY_ORDER:
        curves = [
            faithfulness_curves(score, images[i], e.maps[method], steps=8, n_random=2)
            for i, e in enumerate(explanations)
        ]
        deletion = np.mean([c.deletion_auc for c in curves])
        random = np.mean([c.deletion_auc_random for c in curves])
        assert deletion < random, f"{method}: deletion AUC {deletion:.3f} is not below random {random:.3f}"
        assert np.mean([c.insertion_auc for c in curves]) > np.mean([c.insertion_auc_random for c in curves])
