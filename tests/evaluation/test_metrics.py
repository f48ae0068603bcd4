"""Binary and multi-label metrics: a hand-computed case, scikit-learn on seeded random cases, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from radcnn.errors import ConfigError, DataError, UnknownNameError
from radcnn.evaluation.metrics import (
    SCALAR_METRICS,
    average_precision,
    binary_metrics,
    multilabel_metrics,
    roc_auc,
    weighted_binary_metrics,
)

# Hand case. Predicted positive = p >= 0.5, so both 0.5 scores are predicted positive.
#   y    1    1    1    0    0    0    0    1
#   p   0.9  0.8  0.4  0.6  0.3  0.2  0.5  0.5
#   pred 1    1    0    1    0    0    1    1
#   cell TP   TP   FN   FP   TN   TN   FP   TP   -> TP 3, FN 1, FP 2, TN 2
HAND_Y = [1, 1, 1, 0, 0, 0, 0, 1]
HAND_P = [0.9, 0.8, 0.4, 0.6, 0.3, 0.2, 0.5, 0.5]


def test_hand_computed_case():
    r = binary_metrics(HAND_Y, HAND_P, threshold=0.5)
    assert (r["tp"], r["fn"], r["fp"], r["tn"]) == (3, 1, 2, 2)
    assert r["confusion_matrix"] == [[2, 2], [1, 3]]  # [[tn, fp], [fn, tp]]
    assert (r["n"], r["n_positive"], r["n_negative"], r["n_unknown"]) == (8, 4, 4, 0)
    assert r["prevalence"] == pytest.approx(4 / 8)
    assert r["accuracy"] == pytest.approx((3 + 2) / 8)  # (TP + TN) / n = 0.625
    assert r["sensitivity"] == r["recall"] == pytest.approx(3 / 4)  # TP / (TP + FN)
    assert r["specificity"] == pytest.approx(2 / 4)  # TN / (TN + FP)
    assert r["precision"] == r["ppv"] == pytest.approx(3 / 5)  # TP / (TP + FP)
    assert r["npv"] == pytest.approx(2 / 3)  # TN / (TN + FN)
    assert r["f1"] == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))  # 2TP / (2TP + FP + FN) = 6/9
    assert r["balanced_accuracy"] == pytest.approx((0.75 + 0.5) / 2)
    # AUC: each positive against the 4 negatives {0.6, 0.3, 0.2, 0.5}, ties count 1/2:
    #   0.9 -> 4, 0.8 -> 4, 0.4 -> 2 (beats 0.3, 0.2), 0.5 -> 2 + 0.5 (tie) = 2.5; total 12.5 / 16.
    assert r["roc_auc"] == pytest.approx(12.5 / 16)
    # AP: distinct thresholds from the top, recall step 1/4 whenever a positive is added:
    #   0.9: TP1 FP0 prec 1 | 0.8: TP2 FP0 prec 1 | 0.6: no positive | 0.5: TP3 FP2 prec 3/5 | 0.4: TP4 FP2 prec 4/6
    assert r["pr_auc"] == pytest.approx(0.25 * (1 + 1 + 3 / 5 + 4 / 6))
    # Brier: squared errors 0.01 0.04 0.36 0.36 0.09 0.04 0.25 0.25 -> 1.4 / 8
    assert r["brier"] == pytest.approx(1.4 / 8)
    # ECE, 10 equal bins: the two 0.5 scores share a bin with observed 1/2 = predicted 0.5 (gap 0); every other
    # score is alone (or shares with a same-label score), so the gaps |y - p| sum to 0.1+0.2+0.6+0.6+0.3+0.2 = 2.
    assert r["ece"] == pytest.approx(2.0 / 8)


def _sklearn_reference(y, p, threshold):
    pred = (p >= threshold).astype(int)
    return {
        "accuracy": skm.accuracy_score(y, pred),
        "recall": skm.recall_score(y, pred, zero_division=np.nan),
        "specificity": skm.recall_score(y, pred, pos_label=0, zero_division=np.nan),
        "precision": skm.precision_score(y, pred, zero_division=np.nan),
        "npv": skm.precision_score(y, pred, pos_label=0, zero_division=np.nan),
        "f1": skm.f1_score(y, pred, zero_division=np.nan),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "roc_auc": skm.roc_auc_score(y, p),
        "pr_auc": skm.average_precision_score(y, p),
        "brier": skm.brier_score_loss(y, p),
    }


@pytest.mark.parametrize("seed", range(6))
def test_matches_sklearn_on_random_cases(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 300))
    y = rng.integers(0, 2, n)
    # Scores correlated with the label; rounding to 2 decimals creates many ties.
    p = np.clip(0.35 * y + rng.normal(0.35, 0.2, n), 0, 1).round(2 if seed % 2 else 6)
    threshold = float(rng.choice([0.3, 0.5, 0.62]))
    ours = binary_metrics(y, p, threshold=threshold)
    for name, value in _sklearn_reference(y, p, threshold).items():
        assert ours[name] == pytest.approx(value, abs=1e-12), name
    assert ours["confusion_matrix"] == skm.confusion_matrix(y, (p >= threshold).astype(int)).tolist()
    assert ours["roc_auc"] == pytest.approx(roc_auc(y, p)) and ours["pr_auc"] == pytest.approx(average_precision(y, p))


def test_weighted_kernel_matches_sklearn_sample_weight_and_repetition():
    # The bootstrap relies on weights meaning "row repeated w times"; check both readings.
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 80).astype(float)
    p = rng.random(80).round(2)
    w = rng.integers(0, 4, size=(3, 80)).astype(float)
    got = weighted_binary_metrics(y, p, w, threshold=0.4)
    for b in range(3):
        assert got["roc_auc"][b] == pytest.approx(skm.roc_auc_score(y, p, sample_weight=w[b]))
        assert got["pr_auc"][b] == pytest.approx(skm.average_precision_score(y, p, sample_weight=w[b]))
        assert got["brier"][b] == pytest.approx(skm.brier_score_loss(y, p, sample_weight=w[b]))
        index = np.repeat(np.arange(80), w[b].astype(int))
        repeated = binary_metrics(y[index], p[index], threshold=0.4)
        for name in SCALAR_METRICS:
            assert got[name][b] == pytest.approx(repeated[name], nan_ok=True), name


def test_predicted_positive_includes_the_threshold_itself():
    r = binary_metrics([1, 0], [0.5, 0.4999], threshold=0.5)
    assert (r["tp"], r["tn"]) == (1, 1)


def test_nan_labels_are_excluded_and_counted():
    y = np.array(HAND_Y + [np.nan, np.nan], dtype=float)
    p = np.array(HAND_P + [0.99, np.nan])  # a NaN prediction on an unknown label is never used
    r = binary_metrics(y, p)
    expected = binary_metrics(HAND_Y, HAND_P)
    assert r["n_unknown"] == 2 and r["n"] == 8
    assert {k: v for k, v in r.items() if k != "n_unknown"} == {k: v for k, v in expected.items() if k != "n_unknown"}


def test_only_positives_gives_nan_for_what_needs_negatives():
    r = binary_metrics([1, 1, 1], [0.9, 0.2, 0.6])
    assert math.isnan(r["roc_auc"]) and math.isnan(r["specificity"]) and math.isnan(r["balanced_accuracy"])
    assert r["sensitivity"] == pytest.approx(2 / 3)
    assert r["pr_auc"] == 1.0  # every threshold has precision 1: defined, and scikit-learn agrees
    assert r["pr_auc"] == skm.average_precision_score([1, 1, 1], [0.9, 0.2, 0.6])


def test_npv_zero_is_a_real_zero_not_nan():
    r = binary_metrics([1, 1, 1], [0.9, 0.2, 0.6])
    assert r["npv"] == 0.0  # TN 0, FN 1: every negative call was wrong
    r = binary_metrics([1, 1], [0.9, 0.6])
    assert math.isnan(r["npv"])  # no negative call at all


def test_only_negatives_and_no_positive_calls():
    r = binary_metrics([0, 0, 0], [0.9, 0.2, 0.1])
    assert math.isnan(r["roc_auc"]) and math.isnan(r["pr_auc"]) and math.isnan(r["sensitivity"])
    assert r["precision"] == 0.0 and r["f1"] == 0.0  # one call, and it was wrong: a true 0
    r = binary_metrics([1, 0, 1], [0.1, 0.2, 0.3])
    assert math.isnan(r["precision"])  # nothing predicted positive
    assert r["f1"] == 0.0 and r["sensitivity"] == 0.0  # positives exist and none was found


def test_all_unknown_gives_nan_not_a_crash():
    r = binary_metrics([np.nan, np.nan], [0.3, 0.7])
    assert r["n"] == 0 and r["n_unknown"] == 2
    assert all(math.isnan(r[name]) for name in SCALAR_METRICS)


@pytest.mark.parametrize(
    ("y", "p", "match"),
    [
        ([0, 2], [0.1, 0.2], r"y_true\[1\] = 2.0"),
        ([0, 1], [0.1, 1.5], r"y_prob\[1\] = 1.5.*logits"),
        ([0, 1], [0.1, np.nan], r"y_prob\[1\]"),
        ([0, 1, 1], [0.1, 0.2], "3 rows but y_prob has 2"),
        ([[0, 1]], [[0.1, 0.2]], "1-D"),
    ],
)
def test_bad_input_raises_data_error_naming_the_index(y, p, match):
    with pytest.raises(DataError, match=match):
        binary_metrics(y, p)


def test_threshold_and_metric_name_errors():
    with pytest.raises(ConfigError):
        binary_metrics([0, 1], [0.1, 0.9], threshold=float("nan"))
    with pytest.raises(UnknownNameError, match="roc_auc"):
        weighted_binary_metrics(np.array([0.0, 1.0]), np.array([0.1, 0.9]), np.ones((1, 2)), names=["auroc"])


def test_multilabel_masks_nan_per_column_and_macro_averages():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, (60, 3)).astype(float)
    p = rng.random((60, 3))
    y[:10, 0] = np.nan
    y[5:8, 2] = np.nan
    y[:, 1] = 0.0  # one class only: AUC undefined for this label
    out = multilabel_metrics(
        y, p, ["Effusion", "Nodule", "Pneumonia"], thresholds={"Effusion": 0.3, "Nodule": 0.5, "Pneumonia": 0.7}
    )
    known = ~np.isnan(y[:, 0])
    assert out["Effusion"] == binary_metrics(y[known, 0], p[known, 0], 0.3) | {"n_unknown": 10}
    assert out["Pneumonia"]["n_unknown"] == 3 and out["Pneumonia"]["threshold"] == 0.7
    assert math.isnan(out["Nodule"]["roc_auc"])
    macro = out["macro"]
    assert macro["roc_auc"] == pytest.approx((out["Effusion"]["roc_auc"] + out["Pneumonia"]["roc_auc"]) / 2)
    assert macro["n_defined"]["roc_auc"] == 2 and macro["n_labels"] == 3
    assert macro["accuracy"] == pytest.approx(
        np.mean([out[k]["accuracy"] for k in ("Effusion", "Nodule", "Pneumonia")])
    )


def test_multilabel_input_errors():
    y, p = np.zeros((4, 2)), np.zeros((4, 2))
    with pytest.raises(DataError, match="expected 1 columns .*got 2"):
        multilabel_metrics(y, p, ["a"])
    with pytest.raises(DataError, match="unique"):
        multilabel_metrics(y, p, ["a", "macro"])
    with pytest.raises(ConfigError, match="one per label"):
        multilabel_metrics(y, p, ["a", "b"], thresholds=[0.5])
    with pytest.raises(DataError, match="label 'b'"):
        multilabel_metrics(y, np.c_[np.zeros(4), np.full(4, 3.0)], ["a", "b"])
