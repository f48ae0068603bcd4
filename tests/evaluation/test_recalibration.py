"""Calibration maps fitted on val, and Saerens' prior-shift EM validated with prevalence moving down and up."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from radcnn.errors import DataError
from radcnn.evaluation.calibration import expected_calibration_error
from radcnn.evaluation.recalibration import (
    adjust_posteriors,
    apply_calibrator,
    estimate_prior_shift,
    fit_calibrator,
)


def cohort(n: int, prevalence: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Scores x ~ N(+1, 1) for positives and N(-1, 1) for negatives; the exact posterior at prevalence 0.5 is
    sigmoid(2x), so these probabilities are calibrated for a training prevalence of one half."""
    y = (rng.random(n) < prevalence).astype(float)
    x = rng.normal(np.where(y == 1, 1.0, -1.0), 1.0)
    return y, 1.0 / (1.0 + np.exp(-2.0 * x))


@pytest.mark.parametrize("true_prevalence", [0.15, 0.30, 0.70, 0.85])
def test_prior_shift_estimate_follows_the_prevalence_down_and_up(true_prevalence):
    rng = np.random.default_rng(int(true_prevalence * 100))
    y, p = cohort(20_000, true_prevalence, rng)
    shift, adjusted = estimate_prior_shift(p, 0.5)
    assert shift.converged
    assert shift.estimated_prior == pytest.approx(y.mean(), abs=0.02)
    # the direction is right: below 0.5 when fewer positives, above when more
    assert (shift.estimated_prior - 0.5) * (true_prevalence - 0.5) > 0
    # the re-weighted posteriors are better calibrated for the new cohort than the old ones
    assert expected_calibration_error(y, adjusted) < expected_calibration_error(y, p)


def test_no_shift_keeps_the_prevalence():
    rng = np.random.default_rng(3)
    y, p = cohort(20_000, 0.5, rng)
    shift, _ = estimate_prior_shift(p, 0.5)
    assert shift.estimated_prior == pytest.approx(0.5, abs=0.02)


def test_adjust_posteriors_by_hand():
    # p = 0.5 at prior 0.5 moved to prior 0.2: odds 1 × (0.2/0.8)/(0.5/0.5) = 0.25 → 0.2
    assert adjust_posteriors(np.array([0.5]), 0.5, 0.2)[0] == pytest.approx(0.2)
    # p = 0.8 at prior 0.5 to 0.75: odds 4 × 3 = 12 → 12/13
    assert adjust_posteriors(np.array([0.8]), 0.5, 0.75)[0] == pytest.approx(12 / 13)
    # a no-op when the prior does not move
    assert adjust_posteriors(np.array([0.3, 0.9]), 0.4, 0.4) == pytest.approx([0.3, 0.9])


def test_platt_matches_scikit_learn_and_fixes_overconfidence():
    rng = np.random.default_rng(0)
    y, p = cohort(4000, 0.4, rng)
    logit = np.log(p / (1 - p))
    overconfident = 1 / (1 + np.exp(-3 * logit))
    calibrator = fit_calibrator(y, overconfident, "platt")
    reference = LogisticRegression(C=1e6, max_iter=1000).fit(
        np.log(np.clip(overconfident, 1e-6, 1 - 1e-6) / np.clip(1 - overconfident, 1e-6, 1))[:, None], y
    )
    assert calibrator["slope"] == pytest.approx(reference.coef_[0, 0], rel=1e-3)
    assert calibrator["slope"] == pytest.approx(1 / 3, abs=0.06)  # undoes the ×3 on the logit
    fixed = apply_calibrator(calibrator, overconfident)
    assert expected_calibration_error(y, fixed) < expected_calibration_error(y, overconfident) / 2


def test_isotonic_matches_scikit_learn_predictions():
    rng = np.random.default_rng(1)
    y, p = cohort(500, 0.5, rng)
    calibrator = fit_calibrator(y, p, "isotonic")
    reference = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(p, y)
    grid = np.linspace(0, 1, 101)
    assert apply_calibrator(calibrator, grid) == pytest.approx(reference.predict(grid))


def test_one_class_cannot_be_calibrated_and_bad_priors_are_errors():
    with pytest.raises(DataError, match="both classes"):
        fit_calibrator([1, 1, 1], [0.2, 0.5, 0.9])
    with pytest.raises(Exception, match="prevalence"):
        estimate_prior_shift([0.2, 0.4], 1.0)
