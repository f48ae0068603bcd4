"""Expected calibration error and reliability-diagram data: hand-computed, scikit-learn, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.calibration import calibration_curve

from radcnn.errors import ConfigError, UnknownNameError
from radcnn.evaluation.calibration import (
    assign_bins,
    calibration_bin_edges,
    calibration_curve_data,
    expected_calibration_error,
    weighted_ece,
)

# 5 equal bins [0, .2) [.2, .4) [.4, .6) [.6, .8) [.8, 1.0]; no score sits on an inner edge.
HAND_P = [0.05, 0.15, 0.3, 0.35, 0.7, 0.75, 0.9, 0.95, 1.0]
HAND_Y = [0, 0, 1, 0, 1, 1, 1, 0, 1]


def test_ece_hand_computed():
    # bin [0, .2):   p .05 .15     -> mean .1,   observed 0/2, gap .1,   n 2
    # bin [.2, .4):  p .3 .35      -> mean .325, observed 1/2, gap .175, n 2
    # bin [.4, .6):  empty
    # bin [.6, .8):  p .7 .75      -> mean .725, observed 2/2, gap .275, n 2
    # bin [.8, 1.0]: p .9 .95 1.0  -> mean .95,  observed 2/3, gap .95 - 2/3, n 3 (1.0 is in the closed last bin)
    # ECE = (2*.1 + 2*.175 + 2*.275 + 3*(.95 - 2/3)) / 9 = (0.2 + 0.35 + 0.55 + 0.85) / 9 = 1.95 / 9
    assert expected_calibration_error(HAND_Y, HAND_P, n_bins=5) == pytest.approx(1.95 / 9)
    data = calibration_curve_data(HAND_Y, HAND_P, n_bins=5)
    assert data["counts"] == [2, 2, 0, 2, 3]
    assert data["mean_predicted"][0] == pytest.approx(0.1) and math.isnan(data["mean_predicted"][2])
    assert data["observed_fraction"][4] == pytest.approx(2 / 3) and math.isnan(data["observed_fraction"][2])
    assert data["ece"] == pytest.approx(1.95 / 9)
    assert data["mce"] == pytest.approx(0.95 - 2 / 3)
    assert data["bin_edges"] == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])


def test_bins_are_left_closed_and_the_last_is_closed():
    edges = calibration_bin_edges(np.array([]), n_bins=2)
    assert assign_bins(np.array([0.0, 0.4999, 0.5, 1.0]), edges).tolist() == [0, 0, 1, 1]


def test_perfectly_calibrated_bins_have_zero_ece():
    # In each bin the observed fraction equals the mean prediction: 0.25 with 1 of 4 positive, 0.75 with 3 of 4.
    y = [1, 0, 0, 0, 1, 1, 1, 0]
    p = [0.25] * 4 + [0.75] * 4
    assert expected_calibration_error(y, p) == pytest.approx(0.0)


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
@pytest.mark.parametrize("seed", range(3))
def test_reliability_data_matches_sklearn_calibration_curve(strategy, seed):
    rng = np.random.default_rng(seed)
    # Continuous scores, and 101 * k / 8 is never whole: no quantile edge falls on a score, so the
    # left-closed (ours) and right-closed (scikit-learn) edge conventions cannot differ.
    p = rng.random(102) ** 1.5
    y = (rng.random(102) < p).astype(int)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=8, strategy=strategy)
    data = calibration_curve_data(y, p, n_bins=8, strategy=strategy)
    filled = np.array(data["counts"]) > 0  # scikit-learn drops empty bins
    np.testing.assert_allclose(np.array(data["observed_fraction"])[filled], prob_true)
    np.testing.assert_allclose(np.array(data["mean_predicted"])[filled], prob_pred)
    # Two independent ECE computations (bincount here, matrix product in weighted_ece) agree.
    assert data["ece"] == pytest.approx(expected_calibration_error(y, p, n_bins=8, strategy=strategy))


def test_quantile_bins_merge_tied_edges():
    p = np.array([0.2] * 10 + [0.9] * 2)
    edges = calibration_bin_edges(p, n_bins=4, strategy="quantile")
    assert edges[0] == 0.0 and edges[-1] == 1.0 and np.all(np.diff(edges) > 0)
    assert len(edges) - 1 < 4


def test_weighted_ece_equals_repetition():
    y = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    p = np.array([0.1, 0.8, 0.35, 0.6, 0.95])
    w = np.array([[2.0, 0.0, 1.0, 3.0, 1.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    got = weighted_ece(y, p, w)
    index = np.repeat(np.arange(5), w[0].astype(int))
    assert got[0] == pytest.approx(expected_calibration_error(y[index], p[index]))
    assert math.isnan(got[1])  # zero total weight: undefined


def test_nan_labels_excluded_and_empty_input_is_nan():
    assert expected_calibration_error([1, np.nan], [0.7, 0.2]) == pytest.approx(0.3)
    assert math.isnan(expected_calibration_error([np.nan], [0.2]))
    data = calibration_curve_data([np.nan], [0.2])
    assert data["n"] == 0 and data["n_unknown"] == 1 and math.isnan(data["ece"])


def test_bad_settings():
    with pytest.raises(ConfigError, match="n_bins"):
        expected_calibration_error([0, 1], [0.1, 0.9], n_bins=0)
    with pytest.raises(UnknownNameError, match="quantile"):
        expected_calibration_error([0, 1], [0.1, 0.9], strategy="equal")
