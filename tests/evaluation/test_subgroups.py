"""Subgroup tables: one row per value, numbers equal to metrics on the subset, CIs with patient groups."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from radcnn.errors import DataError
from radcnn.evaluation.bootstrap import bootstrap_ci
from radcnn.evaluation.metrics import binary_metrics
from radcnn.evaluation.subgroups import MISSING, age_band, subgroup_metrics


def test_age_band_edges_are_left_closed_and_missing_stays_missing():
    bands = age_band([39.9, 40, 59, 59.99, 60, 79.5, 80, 95, np.nan, None])
    assert bands.astype(object).tolist()[:8] == ["<40", "40-59", "40-59", "40-59", "60-79", "60-79", "80+", "80+"]
    assert bands.isna().tolist()[8:] == [True, True]
    assert list(bands.cat.categories) == ["<40", "40-59", "60-79", "80+"] and bands.cat.ordered
    assert age_band([5, 17, 18], edges=(18,)).astype(object).tolist() == ["<18", "<18", "18+"]
    assert age_band(pd.Series([50], index=[7])).index.tolist() == [7]


def test_age_band_errors():
    with pytest.raises(DataError, match="non-negative"):
        age_band([30, -2])
    with pytest.raises(DataError, match="increasing"):
        age_band([30], edges=(60, 40))


def _cohort(seed=0, n_patients=120, images=2):
    rng = np.random.default_rng(seed)
    pid = np.repeat([f"p{i}" for i in range(n_patients)], images)
    n = pid.size
    y = np.repeat(rng.integers(0, 2, n_patients), images).astype(float)
    p = np.clip(0.35 * y + rng.normal(0.35, 0.2, n), 0, 1)
    table = pd.DataFrame(
        {
            "patient_id": pid,
            "sex": np.repeat(rng.choice(["F", "M"], n_patients), images),
            "age": np.repeat(rng.integers(20, 95, n_patients), images).astype(float),
            "view": rng.choice(["PA", "AP", "LAT"], n, p=[0.6, 0.37, 0.03]),
        }
    )
    table.loc[[3, 4], "sex"] = None
    return y, p, table


def test_rows_match_binary_metrics_on_each_subset():
    y, p, table = _cohort()
    out = subgroup_metrics(y, p, table, threshold=0.45, min_size=10)
    # "site" is absent and skipped; age_band is derived from "age".
    assert list(dict.fromkeys(out["column"])) == ["all", "sex", "age_band", "view"]
    assert out.loc[out["column"] == "sex", "value"].tolist() == ["F", "M", MISSING]
    assert out.loc[out["column"] == "age_band", "value"].tolist() == ["<40", "40-59", "60-79", "80+"]
    everything = out.iloc[0]
    assert everything["n"] == len(y) and everything["roc_auc"] == pytest.approx(binary_metrics(y, p)["roc_auc"])
    for _, row in out[out["column"] == "sex"].iterrows():
        mask = table["sex"].isna() if row["value"] == MISSING else table["sex"] == row["value"]
        expected = binary_metrics(y[mask], p[mask], 0.45)
        # The 2 rows with a missing sex are below min_size: counts only, metrics withheld.
        keys = ("n", "n_positive", "prevalence") if row["note"] else ("n", "sensitivity", "specificity", "roc_auc")
        for key in keys:
            assert row[key] == pytest.approx(expected[key]), (row["value"], key)
    assert out.loc[out["value"] == MISSING, "n"].tolist() == [2]
    # Every row of the table is in exactly one subgroup of each column.
    assert out.groupby("column")["n"].sum().eq(len(y)).all()


def test_small_subgroups_keep_counts_but_not_metrics():
    y, p, table = _cohort()
    out = subgroup_metrics(y, p, table, columns=("view",), min_size=30)
    lateral = out[out["value"] == "LAT"].iloc[0]
    assert 0 < lateral["n"] < 30 and math.isnan(lateral["roc_auc"]) and "fewer than 30" in lateral["note"]
    assert out[out["value"] == "PA"].iloc[0]["note"] == ""


def test_patient_level_intervals_per_subgroup():
    y, p, table = _cohort(seed=1)
    out = subgroup_metrics(y, p, table, columns=("sex",), groups="patient_id", min_size=10, n_boot=200, seed=3)
    women = out[out["value"] == "F"].iloc[0]
    mask = (table["sex"] == "F").to_numpy()
    ci = bootstrap_ci(y[mask], p[mask], table["patient_id"][mask], "roc_auc", n_boot=200, seed=3)
    assert (women["roc_auc_low"], women["roc_auc_high"]) == pytest.approx((ci.low, ci.high))
    assert women["n_groups"] == table.loc[mask, "patient_id"].nunique()
    reported = out[out["note"] == ""]
    assert len(reported) == 3  # all, F, M; the 2-row "(missing)" group is below min_size
    for metric in ("sensitivity", "specificity", "roc_auc"):
        assert (reported[f"{metric}_low"] <= reported[metric]).all(), metric
        assert (reported[metric] <= reported[f"{metric}_high"]).all(), metric
    assert out.loc[out["value"] == MISSING, ["roc_auc_low", "roc_auc_high"]].isna().all(axis=None)


def test_unknown_labels_are_counted_per_subgroup():
    y, p, table = _cohort()
    y[:6] = np.nan
    out = subgroup_metrics(y, p, table, columns=(), min_size=1)
    assert out.iloc[0]["n_unknown"] == 6 and out.iloc[0]["n"] == len(y) - 6


def test_errors():
    y, p, table = _cohort()
    with pytest.raises(DataError, match="rows but there are"):
        subgroup_metrics(y[:-1], p[:-1], table)
    with pytest.raises(DataError, match="not in the table"):
        subgroup_metrics(y, p, table, groups="study_id")
    with pytest.raises(DataError, match=r"y_prob\[2\]"):
        subgroup_metrics(y, np.r_[p[:2], 2.0, p[3:]], table)
