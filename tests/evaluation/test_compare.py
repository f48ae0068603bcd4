"""Comparing two AUCs: DeLong's test (hand-worked case, direct variance formula, scikit-learn AUCs) and the
patient-level paired bootstrap."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from radcnn.evaluation.compare import delong_components, delong_test, midranks, paired_bootstrap_auc_difference

# Hand case: 3 positives, 2 negatives. psi(x, y) = 1 if x > y, 1/2 if equal, 0 otherwise.
#   Model A: positives .9 .6 .4, negatives .5 .3
#     V10 (per positive: share of negatives beaten) = [1, 1, 1/2]   -> AUC_A = 2.5/3 = 5/6
#     V01 (per negative: share of positives above)  = [2/3, 1]      -> mean 5/6
#   Model B: positives .7 .2 .8, negatives .5 .6
#     V10 = [1, 0, 1] -> AUC_B = 2/3;  V01 = [2/3, 2/3]
#   S10 (covariance over the 3 positives, ddof 1): deviations A [1/6, 1/6, -1/3], B [1/3, -2/3, 1/3]
#     S10_AA = (1/36 + 1/36 + 4/36) / 2 = 1/12;  S10_BB = (1/9 + 4/9 + 1/9) / 2 = 1/3
#     S10_AB = (1/18 - 2/18 - 2/18) / 2 = -1/12
#   S01 (over the 2 negatives): deviations A [-1/6, 1/6], B [0, 0] -> S01_AA = 1/18, S01_BB = S01_AB = 0
#   Var(A - B) = (1/12 + 1/3 + 2/12) / 3 + (1/18) / 2 = 7/36 + 1/36 = 2/9
#   diff = 5/6 - 2/3 = 1/6; z = (1/6) / sqrt(2/9) = 1 / (2 sqrt 2) = 0.35355; p = 2 (1 - Phi(z)) = 0.7237
HAND_Y = [1, 1, 1, 0, 0]
HAND_A = [0.9, 0.6, 0.4, 0.5, 0.3]
HAND_B = [0.7, 0.2, 0.8, 0.5, 0.6]


def test_delong_hand_worked_case():
    r = delong_test(HAND_Y, HAND_A, HAND_B)
    assert r.auc_a == pytest.approx(5 / 6) and r.auc_b == pytest.approx(2 / 3)
    assert r.diff == pytest.approx(1 / 6)
    assert r.se == pytest.approx(math.sqrt(2 / 9))
    assert r.z == pytest.approx(1 / (2 * math.sqrt(2)))
    assert r.p_value == pytest.approx(0.72367, abs=1e-5)
    half = 1.959963984540054 * math.sqrt(2 / 9)
    assert (r.ci_low, r.ci_high) == pytest.approx((1 / 6 - half, 1 / 6 + half))
    assert (r.method, r.n, r.n_positive, r.n_negative) == ("delong", 5, 3, 2)
    _, v10, v01 = delong_components(np.array(HAND_Y, dtype=float), np.array(HAND_A))
    assert v10 == pytest.approx([1, 1, 0.5]) and v01 == pytest.approx([2 / 3, 1])


def _direct_delong_variance(y, a, b):
    """DeLong et al. (1988) written out with explicit loops over every positive/negative pair."""
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    m, n = len(pos), len(neg)

    def psi(x, z):
        return 1.0 if x > z else 0.5 if x == z else 0.0

    comps = []
    for s in (a, b):
        v10 = [sum(psi(s[i], s[j]) for j in neg) / n for i in pos]
        v01 = [sum(psi(s[i], s[j]) for i in pos) / m for j in neg]
        comps.append((np.array(v10), np.array(v01)))
    aucs = [c[0].mean() for c in comps]

    def cov(u, v):
        return float(np.sum((u - u.mean()) * (v - v.mean())) / (len(u) - 1))

    s10 = [[cov(comps[r][0], comps[c][0]) for c in range(2)] for r in range(2)]
    s01 = [[cov(comps[r][1], comps[c][1]) for c in range(2)] for r in range(2)]
    var = (s10[0][0] + s10[1][1] - 2 * s10[0][1]) / m + (s01[0][0] + s01[1][1] - 2 * s01[0][1]) / n
    return aucs, var


@pytest.mark.parametrize("seed", range(4))
def test_delong_matches_direct_formula_and_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 40)
    y[:2] = [0, 1]
    a = np.clip(0.3 * y + rng.normal(0.4, 0.2, 40), 0, 1).round(1)  # coarse: many ties
    b = np.clip(0.15 * y + rng.normal(0.4, 0.2, 40), 0, 1).round(2)
    r = delong_test(y, a, b)
    (auc_a, auc_b), var = _direct_delong_variance(y, a, b)
    assert r.auc_a == pytest.approx(roc_auc_score(y, a)) == pytest.approx(auc_a)
    assert r.auc_b == pytest.approx(roc_auc_score(y, b)) == pytest.approx(auc_b)
    assert r.se == pytest.approx(math.sqrt(var))
    assert r.p_value == pytest.approx(2 * NormalDist().cdf(-abs(r.diff) / r.se))


def test_delong_symmetry_and_degenerate_cases():
    ab, ba = delong_test(HAND_Y, HAND_A, HAND_B), delong_test(HAND_Y, HAND_B, HAND_A)
    assert ba.diff == pytest.approx(-ab.diff) and ba.p_value == pytest.approx(ab.p_value)
    same = delong_test(HAND_Y, HAND_A, HAND_A)
    assert same.diff == 0.0 and same.se == 0.0 and math.isnan(same.z) and math.isnan(same.p_value)
    one_class = delong_test([1, 1, 1], [0.2, 0.4, 0.6], [0.3, 0.2, 0.1])
    assert math.isnan(one_class.auc_a) and math.isnan(one_class.p_value)
    single_negative = delong_test([1, 1, 0], [0.9, 0.4, 0.5], [0.3, 0.8, 0.1])
    assert single_negative.auc_a == pytest.approx(0.5) and math.isnan(single_negative.se)


def test_delong_excludes_nan_labels():
    y = HAND_Y + [np.nan]
    assert delong_test(y, HAND_A + [0.1], HAND_B + [0.9]) == delong_test(HAND_Y, HAND_A, HAND_B)


def test_midranks_average_ties():
    assert midranks(np.array([0.3, 0.1, 0.3, 0.2])).tolist() == [3.5, 1.0, 3.5, 2.0]


def _two_models(n_patients, images, seed):
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, n_patients)
    base = rng.normal(0, 1, n_patients)  # patient effect shared by both models and all images
    groups = np.repeat(np.arange(n_patients), images)
    y = np.repeat(label, images).astype(float)
    shared = np.repeat(base, images) + rng.normal(0, 0.1, groups.size)
    a = 1 / (1 + np.exp(-(1.2 * (y - 0.5) + shared)))
    b = 1 / (1 + np.exp(-(0.8 * (y - 0.5) + shared + rng.normal(0, 0.3, groups.size))))
    return y, a, b, groups


def test_paired_bootstrap_agrees_with_delong_for_independent_cases():
    y, a, b, groups = _two_models(400, 1, seed=0)
    boot = paired_bootstrap_auc_difference(y, a, b, groups, n_boot=1000, seed=0)
    delong = delong_test(y, a, b)
    assert boot.diff == pytest.approx(roc_auc_score(y, a) - roc_auc_score(y, b))
    assert boot.ci_low <= boot.diff <= boot.ci_high
    assert 0.75 < boot.se / delong.se < 1.33
    assert (boot.method, boot.n_boot, boot.n_valid) == ("paired_bootstrap", 1000, 1000)


def test_paired_bootstrap_resamples_patients_and_is_reproducible():
    y, a, b, groups = _two_models(50, 12, seed=1)
    first = paired_bootstrap_auc_difference(y, a, b, groups, n_boot=300, seed=4)
    assert first == paired_bootstrap_auc_difference(y, a, b, groups, n_boot=300, seed=4)
    # DeLong sees 600 independent images; the patient bootstrap sees 50 patients -> a clearly larger SE.
    assert first.se > 1.5 * delong_test(y, a, b).se
    by_image = paired_bootstrap_auc_difference(y, a, b, None, n_boot=300, seed=4)
    assert first.se > 1.5 * by_image.se
