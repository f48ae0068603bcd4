"""Exact (Clopper–Pearson) and Wilson intervals against hand-computed values and scipy's beta quantiles."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import beta

from radcnn.errors import ConfigError, UnknownNameError
from radcnn.evaluation.intervals import clopper_pearson, proportion_counts, proportion_interval, wilson
from radcnn.evaluation.metrics import binary_metrics


def test_all_successes_has_the_closed_form_lower_bound():
    # k = n: the lower bound solves p^n = alpha/2, so p = 0.025^(1/14) = 0.7684 for 14/14 — not 1.000–1.000.
    low, high = clopper_pearson(14, 14)
    assert low == pytest.approx(0.025 ** (1 / 14), abs=1e-12)
    assert low == pytest.approx(0.7684, abs=1e-4)
    assert high == 1.0


def test_no_successes_has_the_closed_form_upper_bound():
    low, high = clopper_pearson(0, 10)
    assert low == 0.0
    assert high == pytest.approx(1 - 0.025 ** (1 / 10), abs=1e-12)  # 0.3085


def test_interior_matches_the_beta_quantiles_and_a_published_value():
    low, high = clopper_pearson(3, 10)
    assert low == pytest.approx(beta.ppf(0.025, 3, 8))
    assert high == pytest.approx(beta.ppf(0.975, 4, 7))
    # the textbook 95% exact interval of 3/10 is 0.0667 – 0.6525
    assert (round(low, 4), round(high, 4)) == (0.0667, 0.6525)


def test_wilson_matches_the_hand_computed_formula():
    k, n, z = 8, 20, 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert wilson(k, n) == pytest.approx((centre - half, centre + half))
    assert wilson(8, 20) == pytest.approx((0.2188, 0.6134), abs=1e-4)  # published value for 8/20
    low, high = wilson(14, 14)
    assert 0.78 < low < 0.79 and high == 1.0


def test_empty_proportion_is_undefined_and_bad_counts_are_errors():
    assert all(math.isnan(v) for v in clopper_pearson(0, 0))
    assert all(math.isnan(v) for v in wilson(0, 0))
    with pytest.raises(ConfigError):
        clopper_pearson(5, 3)
    with pytest.raises(ConfigError):
        clopper_pearson(1, 3, alpha=1.5)


def test_counts_come_from_the_confusion_matrix():
    y = np.array([1, 1, 1, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.2, 0.7, 0.1, 0.1, 0.3])
    metrics = binary_metrics(y, p, 0.5)  # tp 2, fn 1, fp 1, tn 3
    assert proportion_counts(metrics, "sensitivity") == (2, 3)
    assert proportion_counts(metrics, "specificity") == (3, 4)
    assert proportion_counts(metrics, "ppv") == (2, 3)
    assert proportion_counts(metrics, "npv") == (3, 4)
    assert proportion_counts(metrics, "accuracy") == (5, 7)
    row = proportion_interval(metrics, "specificity")
    assert row["estimate"] == pytest.approx(0.75)
    assert (row["low"], row["high"]) == pytest.approx(clopper_pearson(3, 4))
    assert row["method"] == "clopper-pearson"
    assert proportion_interval(metrics, "npv", method="wilson")["low"] == pytest.approx(wilson(3, 4)[0])
    with pytest.raises(UnknownNameError):
        proportion_interval(metrics, "npv", method="wald")


def test_a_small_subgroup_with_all_positives_found_does_not_read_one_to_one():
    import pandas as pd

    from radcnn.evaluation.subgroups import subgroup_metrics

    y = np.r_[np.ones(14), np.zeros(30), np.ones(30), np.zeros(30)]
    p = np.r_[np.full(14, 0.9), np.full(30, 0.1), np.linspace(0.2, 0.9, 30), np.linspace(0.05, 0.7, 30)]
    table = pd.DataFrame({"site": ["small"] * 44 + ["big"] * 60, "patient_id": [f"P{i}" for i in range(104)]})
    rows = subgroup_metrics(y, p, table, columns=["site"], groups="patient_id", min_size=10, n_boot=200)
    small = rows[rows["value"] == "small"].iloc[0]
    assert small["sensitivity"] == 1.0
    assert small["sensitivity_high"] == 1.0
    assert small["sensitivity_low"] == pytest.approx(0.025 ** (1 / 14))  # exact, not the bootstrap's 1.0
    assert "clopper-pearson" in small["interval"]
