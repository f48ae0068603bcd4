"""Calibrated probabilities (fitted on validation) and a prior-shift correction for a new cohort.

* `fit_calibrator(y_val, p_val, method)`: Platt scaling (logistic regression on the logit of the model's
  probability, scikit-learn's `LogisticRegression`) or isotonic regression (scikit-learn's
  `IsotonicRegression`). The result is a small JSON-ready dict, so a run can store it beside its model and
  apply it later without pickles; `apply_calibrator` evaluates it (isotonic: the same piecewise-linear
  interpolation with clipping that scikit-learn's ``predict`` uses).
* `estimate_prior_shift(p, train_prior)`: the EM algorithm of Saerens, Latinne & Decaestecker (2002),
  "Adjusting the outputs of a classifier to new a priori probabilities", Neural Computation 14:21-41. Given
  posteriors calibrated for the training prevalence ``pi_0`` it re-estimates the prevalence ``pi`` of an
  unlabelled cohort and re-weights each posterior::

      p'(x) = (pi / pi_0) p(x) / [ (pi / pi_0) p(x) + ((1 - pi) / (1 - pi_0)) (1 - p(x)) ]
      pi   <- mean p'(x)       (repeat until pi stops moving)

  It assumes *label shift only* (the class-conditional images are unchanged) and calibrated inputs — feed it
  `apply_calibrator` output, not raw CNN scores, which are usually over-confident and then move the estimate
  the wrong way. It is validated in ``tests/evaluation/test_recalibration.py`` on cohorts whose prevalence
  moves both down and up from the training prevalence.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from radcnn.errors import ConfigError, DataError, UnknownNameError
from radcnn.evaluation.arrays import clean_binary

CALIBRATORS = ("platt", "isotonic")
_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def fit_calibrator(y_true, y_prob, method: str = "platt") -> dict:
    """Fit a calibration map on validation labels and probabilities; returns its JSON-ready parameters."""
    if method not in CALIBRATORS:
        raise UnknownNameError("calibration method", method, list(CALIBRATORS))
    data = clean_binary(y_true, y_prob)
    n_pos = int(data.y.sum())
    if n_pos == 0 or n_pos == data.n:
        raise DataError(f"fitting a calibration map needs both classes; got {n_pos} positive of {data.n}")
    if method == "platt":
        from sklearn.linear_model import LogisticRegression

        # Unregularised (C large): Platt scaling is a two-parameter maximum-likelihood fit, not a penalised one.
        model = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(data.p)[:, None], data.y)
        return {
            "method": "platt",
            "slope": float(model.coef_[0, 0]),
            "intercept": float(model.intercept_[0]),
            "n": data.n,
        }
    from sklearn.isotonic import IsotonicRegression

    model = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(data.p, data.y)
    return {
        "method": "isotonic",
        "x": [float(v) for v in model.X_thresholds_],
        "y": [float(v) for v in model.y_thresholds_],
        "n": data.n,
    }


def apply_calibrator(calibrator: dict, y_prob) -> np.ndarray:
    """Calibrated probabilities from a `fit_calibrator` result."""
    p = np.asarray(y_prob, dtype=np.float64)
    method = calibrator.get("method")
    if method == "platt":
        z = calibrator["slope"] * _logit(p) + calibrator["intercept"]
        return 1.0 / (1.0 + np.exp(-z))
    if method == "isotonic":
        return np.interp(p, calibrator["x"], calibrator["y"])
    raise UnknownNameError("calibration method", str(method), list(CALIBRATORS))


@dataclass(frozen=True)
class PriorShift:
    """Saerens' EM result: the estimated prevalence of the new cohort and how the iteration went."""

    train_prior: float
    estimated_prior: float
    iterations: int
    converged: bool

    def to_dict(self) -> dict:
        return asdict(self)


def adjust_posteriors(p, train_prior: float, new_prior: float) -> np.ndarray:
    """Bayes' rule re-weighting of posteriors from prevalence ``train_prior`` to ``new_prior``."""
    p = np.asarray(p, dtype=np.float64)
    up = (new_prior / train_prior) * p
    down = ((1 - new_prior) / (1 - train_prior)) * (1 - p)
    return up / (up + down)


def estimate_prior_shift(
    y_prob, train_prior: float, *, max_iter: int = 1000, tol: float = 1e-8
) -> tuple[PriorShift, np.ndarray]:
    """Saerens EM (module docstring): (the estimate, the re-weighted posteriors). Unlabelled data suffice."""
    if not 0.0 < float(train_prior) < 1.0:
        raise ConfigError(f"train_prior = {train_prior!r}: expected a prevalence strictly between 0 and 1")
    p = np.asarray(y_prob, dtype=np.float64).reshape(-1)
    if p.size == 0 or not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        raise DataError("estimate_prior_shift: expected a non-empty array of probabilities in [0, 1]")
    prior, converged, iterations = float(train_prior), False, 0
    while iterations < max_iter and not converged:
        iterations += 1
        new = float(np.clip(adjust_posteriors(p, train_prior, prior).mean(), _EPS, 1 - _EPS))
        converged = abs(new - prior) < tol
        prior = new
    adjusted = adjust_posteriors(p, train_prior, prior)
    return PriorShift(float(train_prior), prior, iterations, converged), adjusted
