"""Threshold selection on a constructed case (worked through by hand) and against scikit-learn's ROC curve."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from radcnn.errors import ConfigError, DataError, UnknownNameError
from radcnn.evaluation.metrics import binary_metrics
from radcnn.evaluation.thresholds import choose_threshold

# Positives score 0.9 0.8 0.7 0.55 0.3; negatives 0.6 0.4 0.35 0.2 0.1. Walking down the thresholds
# (predicted positive = p >= t), with 5 positives and 5 negatives:
#   t     TP FP  sens spec  J    F1 = 2TP / (2TP + FP + FN)
#   0.9   1  0   .2   1.0   .2   2/6  = .333
#   0.8   2  0   .4   1.0   .4   4/7  = .571
#   0.7   3  0   .6   1.0   .6   6/8  = .750   <- best J (tied with 0.55; ties go to the higher threshold)
#   0.6   3  1   .6   .8    .4   6/9  = .667
#   0.55  4  1   .8   .8    .6   8/10 = .800   <- best F1
#   0.4   4  2   .8   .6    .4   8/11 = .727
#   0.35  4  3   .8   .4    .2   8/12 = .667
#   0.3   5  3   1.0  .4    .4   10/13 = .769
#   0.2   5  4   1.0  .2    .2
#   0.1   5  5   1.0  0     0
POS = [0.9, 0.8, 0.7, 0.55, 0.3]
NEG = [0.6, 0.4, 0.35, 0.2, 0.1]
Y = np.array([1] * 5 + [0] * 5)
P = np.array(POS + NEG)


@pytest.mark.parametrize(
    ("method", "target", "threshold", "sens", "spec"),
    [
        ("youden", None, 0.7, 0.6, 1.0),
        ("f1", None, 0.55, 0.8, 0.8),
        ("sensitivity", 0.8, 0.55, 0.8, 0.8),  # highest t with sens >= .8
        ("sensitivity", 0.95, 0.3, 1.0, 0.4),
        ("specificity", 0.8, 0.55, 0.8, 0.8),  # lowest t with spec >= .8
        ("specificity", 0.9, 0.7, 0.6, 1.0),
    ],
)
def test_constructed_case(method, target, threshold, sens, spec):
    choice = choose_threshold(Y, P, method, target=target)
    assert choice.threshold == threshold and choice.method == method and choice.target == target
    assert choice.sensitivity == pytest.approx(sens) and choice.specificity == pytest.approx(spec)
    assert (choice.n_positive, choice.n_negative) == (5, 5)
    # Applying the threshold to the same data reproduces what the choice recorded.
    check = binary_metrics(Y, P, choice.threshold)
    assert check["sensitivity"] == pytest.approx(choice.sensitivity)
    assert check["specificity"] == pytest.approx(choice.specificity)
    assert check["f1"] == pytest.approx(choice.f1)


def test_f1_value_and_dict():
    choice = choose_threshold(Y, P, "f1")
    assert choice.f1 == pytest.approx(0.8)
    assert choice.to_dict()["threshold"] == 0.55


def test_specificity_one_may_need_a_threshold_above_every_score():
    # The top score is a negative, so only "nothing positive" reaches specificity 1.
    choice = choose_threshold([0, 1, 0], [0.9, 0.5, 0.1], "specificity", target=1.0)
    assert choice.threshold > 0.9 and choice.specificity == 1.0 and choice.sensitivity == 0.0
    assert binary_metrics([0, 1, 0], [0.9, 0.5, 0.1], choice.threshold)["fp"] == 0


@pytest.mark.parametrize("seed", range(3))
def test_youden_matches_the_best_point_of_sklearn_roc_curve(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.3 * y + rng.normal(0.4, 0.2, 200), 0, 1).round(3)
    fpr, tpr, thresholds = roc_curve(y, p, drop_intermediate=False)
    best = np.max(tpr - fpr)
    choice = choose_threshold(y, p, "youden")
    assert choice.sensitivity + choice.specificity - 1 == pytest.approx(best)
    assert choice.threshold == max(thresholds[np.isclose(tpr - fpr, best)])


def test_nan_labels_are_ignored():
    y = np.r_[Y, np.nan, np.nan]
    p = np.r_[P, 0.99, 0.01]
    assert choose_threshold(y, p, "youden") == choose_threshold(Y, P, "youden")


def test_errors():
    with pytest.raises(DataError, match="both classes"):
        choose_threshold([1, 1], [0.2, 0.8])
    with pytest.raises(UnknownNameError, match="youden"):
        choose_threshold(Y, P, "max_accuracy")
    with pytest.raises(ConfigError, match="needs a target"):
        choose_threshold(Y, P, "sensitivity")
    with pytest.raises(ConfigError, match="only used by"):
        choose_threshold(Y, P, "youden", target=0.9)
    with pytest.raises(ConfigError, match=r"\(0, 1\]"):
        choose_threshold(Y, P, "specificity", target=1.5)
