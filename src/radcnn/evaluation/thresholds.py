"""Choosing a decision threshold from labelled data.

**Choose on the validation split only**, then apply the fixed threshold to the test split. A threshold chosen
on the test data makes every threshold-dependent test metric (sensitivity, specificity, F1 ...) optimistic.

Candidates are the distinct predicted probabilities (a threshold equal to a score predicts that row positive,
since predicted positive means ``prob >= threshold``) plus one value just above the highest score, which
predicts nothing positive. Applying the returned threshold to the same data therefore reproduces exactly the
sensitivity and specificity recorded in the `ThresholdChoice`.

Methods:

* ``"youden"``: maximise Youden's J = sensitivity + specificity - 1;
* ``"f1"``: maximise F1;
* ``"sensitivity"``: the *highest* threshold whose sensitivity is >= ``target`` (e.g. 0.95 for a rule-out
  test) — the most specific operating point that still meets the sensitivity target;
* ``"specificity"``: the *lowest* threshold whose specificity is >= ``target`` — the most sensitive operating
  point that still meets the specificity target.

Ties between equally good thresholds (youden, f1) go to the highest threshold, i.e. fewer positive calls.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from radcnn.errors import ConfigError, DataError, UnknownNameError
from radcnn.evaluation.arrays import clean_binary

METHODS = ("youden", "sensitivity", "specificity", "f1")
_TARGETED = ("sensitivity", "specificity")
# Rates such as 19/20 are compared with a target such as 0.95; allow for the last bit of rounding.
_TOLERANCE = 1e-12


@dataclass(frozen=True)
class ThresholdChoice:
    """A chosen operating point and what it achieved on the data it was chosen on (the validation split)."""

    threshold: float
    method: str
    target: float | None
    sensitivity: float
    specificity: float
    f1: float
    n_positive: int
    n_negative: int

    def to_dict(self) -> dict:
        return asdict(self)


def operating_points(y: np.ndarray, p: np.ndarray) -> dict[str, np.ndarray]:
    """Candidate thresholds in *decreasing* order with TP and FP counts at each (``p >= threshold``).

    ``y``/``p`` must be clean. The first candidate lies just above the highest score (no positive calls).
    """
    order = np.argsort(-p, kind="stable")
    p_desc, y_desc = p[order], y[order]
    # The last row of each block of tied scores carries the cumulative counts for that threshold.
    last_of_block = np.r_[p_desc[1:] != p_desc[:-1], True]
    tp = np.cumsum(y_desc)[last_of_block]
    fp = np.cumsum(1.0 - y_desc)[last_of_block]
    above = np.nextafter(p_desc[0], np.inf) if p_desc.size else 1.0
    return {
        "threshold": np.r_[above, p_desc[last_of_block]],
        "tp": np.r_[0.0, tp],
        "fp": np.r_[0.0, fp],
    }


def _check_target(method: str, target: float | None) -> float | None:
    if method not in _TARGETED:
        if target is not None:
            raise ConfigError(f"target = {target!r} is only used by methods {list(_TARGETED)}, not {method!r}")
        return None
    if target is None:
        raise ConfigError(f"method {method!r} needs a target in (0, 1], e.g. target=0.95")
    value = float(target)
    if not 0.0 < value <= 1.0:
        raise ConfigError(f"target = {target!r}: expected a {method} in (0, 1]")
    return value


def choose_threshold(y_true, y_prob, method: str = "youden", *, target: float | None = None) -> ThresholdChoice:
    """Pick a decision threshold by `method` (see the module docstring); use validation data only.

    NaN labels are excluded. Raises `DataError` when only one class is present (no trade-off to choose),
    `UnknownNameError` for an unknown method and `ConfigError` for a missing or misplaced ``target``.
    """
    if method not in METHODS:
        raise UnknownNameError("threshold method", method, list(METHODS))
    target = _check_target(method, target)
    data = clean_binary(y_true, y_prob)
    n_pos = int(data.y.sum())
    n_neg = data.n - n_pos
    if n_pos == 0 or n_neg == 0:
        raise DataError(
            f"choosing a threshold needs both classes; got {n_pos} positive and {n_neg} negative labelled rows"
        )
    points = operating_points(data.y, data.p)
    tp, fp = points["tp"], points["fp"]
    sens = tp / n_pos
    spec = 1.0 - fp / n_neg
    f1 = 2 * tp / (2 * tp + fp + (n_pos - tp))  # denominator >= n_pos > 0
    if method == "youden":
        index = int(np.argmax(sens + spec - 1.0))  # argmax returns the first, i.e. the highest threshold
    elif method == "f1":
        index = int(np.argmax(f1))
    elif method == "sensitivity":
        # Sensitivity rises as the threshold falls; the first candidate reaching the target is the highest.
        index = int(np.flatnonzero(sens >= target - _TOLERANCE)[0])
    else:
        # Specificity falls as the threshold falls; the last candidate still meeting it is the lowest.
        index = int(np.flatnonzero(spec >= target - _TOLERANCE)[-1])
    return ThresholdChoice(
        threshold=float(points["threshold"][index]),
        method=method,
        target=target,
        sensitivity=float(sens[index]),
        specificity=float(spec[index]),
        f1=float(f1[index]),
        n_positive=n_pos,
        n_negative=n_neg,
    )
