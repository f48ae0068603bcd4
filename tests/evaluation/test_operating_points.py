"""Operating points chosen on val and scored, with exact intervals, on another cohort."""

from __future__ import annotations

import numpy as np
import pytest

from radcnn.evaluation.intervals import clopper_pearson
from radcnn.evaluation.operating_points import operating_point_table, validation_thresholds


def test_thresholds_reach_their_targets_on_val_and_are_scored_elsewhere():
    rng = np.random.default_rng(0)
    y_val = np.r_[np.ones(100), np.zeros(100)]
    p_val = np.clip(rng.normal(np.where(y_val == 1, 0.65, 0.35), 0.15), 0, 1)
    candidates = validation_thresholds(y_val, p_val)
    names = [c["name"] for c in candidates]
    assert names[0] == "val-Youden" and len(candidates) == 5
    by_name = {c["name"]: c for c in candidates}
    assert by_name["sensitivity ≥ 0.95 on val"]["val"]["sensitivity"] >= 0.95
    assert by_name["specificity ≥ 0.90 on val"]["val"]["specificity"] >= 0.90
    # a fixed-sensitivity threshold is lower than a fixed-specificity one
    assert by_name["sensitivity ≥ 0.95 on val"]["threshold"] < by_name["specificity ≥ 0.95 on val"]["threshold"]

    y = np.array([1, 1, 1, 1, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.6, 0.3, 0.55, 0.2, 0.1])
    rows = operating_point_table(candidates, y, p, run_threshold=0.5, run_source="youden on val")
    assert rows[0]["name"] == "run threshold"
    first = rows[0]["metrics"]
    # at 0.5: tp 3 (0.9, 0.8, 0.6), fn 1, fp 1 (0.55), tn 2
    assert (first["tp"], first["fn"], first["fp"], first["tn"]) == (3, 1, 1, 2)
    assert first["sensitivity"]["estimate"] == pytest.approx(0.75)
    assert (first["sensitivity"]["low"], first["sensitivity"]["high"]) == pytest.approx(clopper_pearson(3, 4))
    assert first["specificity"]["method"] == "clopper-pearson"


def test_one_class_val_gives_only_the_run_threshold():
    assert validation_thresholds([1, 1, 1], [0.2, 0.6, 0.9]) == []
    rows = operating_point_table([], np.array([1, 0]), np.array([0.7, 0.2]), run_threshold=0.5, run_source="x")
    assert [r["name"] for r in rows] == ["run threshold"]
