"""Patient-level bootstrap intervals: correctness, reproducibility, patient resampling, speed."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from radcnn.errors import ConfigError, DataError, UnknownNameError
from radcnn.evaluation.bootstrap import bootstrap_ci, metrics_with_ci, resample_weights
from radcnn.evaluation.metrics import SCALAR_METRICS, binary_metrics


def _study(n_patients=40, images_per_patient=15, seed=0):
    """Many images per patient; all images of a patient share the label and almost the same score."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, n_patients)
    patient_score = np.clip(0.5 + 0.25 * (label - 0.5) + rng.normal(0, 0.2, n_patients), 0.01, 0.99)
    groups = np.repeat([f"P{i:03d}" for i in range(n_patients)], images_per_patient)
    y = np.repeat(label, images_per_patient).astype(float)
    p = np.clip(np.repeat(patient_score, images_per_patient) + rng.normal(0, 0.01, groups.size), 0, 1)
    return y, p, groups


def test_interval_contains_estimate_and_is_reproducible():
    y, p, groups = _study()
    a = bootstrap_ci(y, p, groups, "roc_auc", n_boot=500, seed=11)
    b = bootstrap_ci(y, p, groups, "roc_auc", n_boot=500, seed=11)
    c = bootstrap_ci(y, p, groups, "roc_auc", n_boot=500, seed=12)
    assert a == b
    assert (a.low, a.high) != (c.low, c.high)
    assert a.low <= a.estimate <= a.high
    assert a.estimate == pytest.approx(roc_auc_score(y, p))
    assert (a.n_boot, a.n_valid, a.n_groups, a.method, a.alpha) == (500, 500, 40, "percentile", 0.05)


def test_patient_resampling_is_wider_than_image_resampling():
    # 40 patients x 15 near-identical images: image-level resampling pretends there are 600 independent
    # cases, so its interval is about sqrt(15) ~ 3.9 times too narrow.
    y, p, groups = _study()
    patient = bootstrap_ci(y, p, groups, "roc_auc", n_boot=400, seed=0)
    image = bootstrap_ci(y, p, None, "roc_auc", n_boot=400, seed=0)
    assert patient.n_groups == 40 and image.n_groups == 600
    assert (patient.high - patient.low) > 2.5 * (image.high - image.low)


def test_no_groups_equals_one_group_per_row():
    y, p, _ = _study(10, 3)
    assert bootstrap_ci(y, p, None, "accuracy", n_boot=50, seed=3) == bootstrap_ci(
        y, p, np.arange(y.size), "accuracy", n_boot=50, seed=3
    )


def test_resample_weights_draw_whole_patients():
    codes = np.array([0, 0, 0, 1, 2, 2, 3])
    chunks = list(resample_weights(codes, 4, 300, seed=5))
    weights = np.concatenate(chunks)
    assert weights.shape == (300, 7)
    # All images of one patient carry the same weight, and each resample draws exactly 4 patients.
    assert np.all(weights[:, 0] == weights[:, 1]) and np.all(weights[:, 1] == weights[:, 2])
    assert np.all(weights[:, 4] == weights[:, 5])
    assert np.all(weights[:, [0, 3, 4, 6]].sum(axis=1) == 4)
    assert np.array_equal(weights, np.concatenate(list(resample_weights(codes, 4, 300, seed=5))))


def test_named_metric_and_callable_give_the_same_interval():
    # Same seed -> same patient resamples, whether scored by the vectorised kernel or by scikit-learn.
    y, p, groups = _study(25, 4, seed=2)
    fast = bootstrap_ci(y, p, groups, "roc_auc", n_boot=150, seed=9)
    slow = bootstrap_ci(y, p, groups, roc_auc_score, n_boot=150, seed=9)
    assert fast.estimate == pytest.approx(slow.estimate)
    assert fast.low == pytest.approx(slow.low) and fast.high == pytest.approx(slow.high)
    assert fast.n_valid == slow.n_valid


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
def test_undefined_resamples_are_dropped_and_counted():
    # One positive patient among six: resamples that miss it have no positive, so AUC is undefined there.
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0], dtype=float)
    p = np.array([0.9, 0.8, 0.3, 0.6, 0.2, 0.4, 0.1, 0.5])
    groups = np.array(["a", "a", "b", "c", "d", "e", "f", "f"])
    ci = bootstrap_ci(y, p, groups, "roc_auc", n_boot=200, seed=1)
    codes = np.array([0, 0, 1, 2, 3, 4, 5, 5])  # first-appearance order, as the bootstrap encodes them
    weights = np.concatenate(list(resample_weights(codes, 6, 200, seed=1)))
    assert ci.n_valid == int((weights[:, 0] > 0).sum()) < 200
    assert ci.n_valid > 0 and ci.low <= ci.high
    # scikit-learn returns NaN (older versions: ValueError) on one class; either way the resample is dropped.
    slow = bootstrap_ci(y, p, groups, roc_auc_score, n_boot=200, seed=1)
    assert slow.n_valid == ci.n_valid


def test_percentile_interval_by_hand():
    # Accuracy of each resample can be recomputed from the weights: check the 2.5% / 97.5% quantiles.
    y, p, groups = _study(15, 2, seed=4)
    ci = bootstrap_ci(y, p, groups, "accuracy", n_boot=200, seed=2, alpha=0.1, threshold=0.5)
    codes = np.repeat(np.arange(15), 2)
    weights = np.concatenate(list(resample_weights(codes, 15, 200, seed=2)))
    correct = ((p >= 0.5) == (y == 1)).astype(float)
    accuracy = weights @ correct / weights.sum(axis=1)
    assert (ci.low, ci.high) == pytest.approx(tuple(np.quantile(accuracy, [0.05, 0.95])))


def test_metrics_with_ci_covers_every_scalar_metric():
    y, p, groups = _study(30, 3, seed=6)
    out = metrics_with_ci(y, p, groups, 0.5, n_boot=300, seed=0)
    point = binary_metrics(y, p, 0.5)
    assert set(out) == set(SCALAR_METRICS)
    for name, ci in out.items():
        assert ci["estimate"] == pytest.approx(point[name]), name
        assert ci["n_groups"] == 30 and ci["n_boot"] == 300
        assert ci["low"] <= ci["high"], name
    for name in ("accuracy", "roc_auc", "brier", "sensitivity", "specificity"):
        assert out[name]["low"] <= out[name]["estimate"] <= out[name]["high"], name


def test_nan_labels_drop_rows_before_resampling():
    y, p, groups = _study(20, 2, seed=8)
    y_unknown = y.copy()
    y_unknown[:4] = np.nan  # both images of patients 0 and 1
    with_nan = bootstrap_ci(y_unknown, p, groups, "roc_auc", n_boot=100, seed=0)
    without = bootstrap_ci(y[4:], p[4:], groups[4:], "roc_auc", n_boot=100, seed=0)
    assert with_nan == without and with_nan.n_groups == 18


def test_speed_1000_resamples_of_600_images():
    y, p, groups = _study(200, 3, seed=1)
    start = time.perf_counter()
    ci = bootstrap_ci(y, p, groups, "roc_auc", n_boot=1000, seed=0)
    elapsed = time.perf_counter() - start
    assert ci.n_valid == 1000
    assert elapsed < 1.0, f"1000 AUC resamples took {elapsed:.2f} s"


def test_errors():
    y, p, groups = _study(5, 2)
    with pytest.raises(ConfigError, match="n_boot"):
        bootstrap_ci(y, p, groups, "roc_auc", n_boot=0)
    with pytest.raises(ConfigError, match="alpha"):
        bootstrap_ci(y, p, groups, "roc_auc", alpha=1.5)
    with pytest.raises(UnknownNameError, match="roc_auc"):
        bootstrap_ci(y, p, groups, "auroc")
    with pytest.raises(ConfigError, match="callable"):
        bootstrap_ci(y, p, groups, 3)
    with pytest.raises(DataError, match="one per row"):
        bootstrap_ci(y, p, groups[:-1], "roc_auc")
    missing = groups.astype(object)
    missing[3] = None
    with pytest.raises(DataError, match=r"groups\[3\] is missing"):
        bootstrap_ci(y, p, missing, "roc_auc")
