"""Grad-CAM on a seed CNN trained on the synthetic chest phantom points at the nodules.

The blob task of the other explanation tests is a stand-in; this test uses the real phantom pipeline end to end
(synthesise DICOM studies → `fit` → `evaluate_run_explanations` on true-positive test images with nodule boxes).
Small on purpose: 240 patients rendered at 128 px, the model at 96 px, 10 epochs (about 45 s here).
"""

from __future__ import annotations

import pytest

from radcnn.config import DataConfig, RunConfig, TrainConfig
from radcnn.explain.evaluate import evaluate_run_explanations
from radcnn.phantom.synth import synthesize_dataset
from radcnn.training.fit import fit


@pytest.mark.slow
def test_gradcam_on_a_phantom_trained_model_points_at_the_nodules(tmp_path):
    synth = synthesize_dataset(tmp_path / "data", n_patients=240, size=128, seed=3, workers=2)
    config = RunConfig(
        data=DataConfig(source=str(synth.csv_path), label_columns=("nodule",), image_size=(96, 96)),
        train=TrainConfig(epochs=10, seed=0, progress_bar=False),
    )
    result = fit(config, tmp_path / "run")
    assert result.best_val_auc > 0.9

    scores = evaluate_run_explanations(result.run_dir, methods="gradcam", max_images=30, sanity_images=2)
    gradcam = scores.scores[0]
    assert scores.n_images >= 15  # enough true positives with boxes to mean something
    assert gradcam.pointing_game >= 0.8  # the target, on true positives
    # Nodule boxes cover ~1 % of the image; Grad-CAM puts several times its chance share of mass inside them.
    assert gradcam.mass_in_boxes > 5 * gradcam.box_area
    assert gradcam.deletion_auc < gradcam.deletion_auc_random
    assert gradcam.sanity_passed
