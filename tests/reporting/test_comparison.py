"""`compare_runs`: two runs on the same test images — DeLong and the paired patient bootstrap, and refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radcnn.errors import DataError
from radcnn.evaluation.compare import delong_test
from radcnn.reporting.comparison import compare_runs

N_BOOT = 200


@pytest.fixture(scope="module")
def scored_pair(tiny_run_template, perturb_run, tmp_path_factory):
    """Two runs on the same images, evaluated for real, then given known, distinct scores so the tests do not
    depend on how well two training epochs went: run A separates the classes better than run B."""
    root = tmp_path_factory.mktemp("pair")
    run_a = Path(shutil.copytree(tiny_run_template, root / "run_a"))
    run_b = perturb_run(run_a, root / "run_b")
    compare_runs(run_a, run_b, n_boot=N_BOOT, seed=0)  # evaluates both: writes each run's predictions.csv
    for run in (run_a, run_b):
        assert (run / "predictions.csv").is_file() and (run / "metrics.json").is_file()
    rng = np.random.default_rng(0)
    for run, signal in ((run_a, 0.5), (run_b, 0.15)):
        table = pd.read_csv(run / "predictions.csv")
        y = table["pneumonia_true"].to_numpy()
        table["pneumonia_probability"] = np.clip(signal * y + rng.uniform(0, 1 - signal, len(y)), 0, 1)
        table.to_csv(run / "predictions.csv", index=False)
    return run_a, run_b


@pytest.fixture
def compared(scored_pair, tmp_path):
    """Private copies of the scored pair (tests may edit them) and their comparison."""
    run_a, run_b = (Path(shutil.copytree(run, tmp_path / run.name)) for run in scored_pair)
    out = tmp_path / "cmp" / "comparison.json"
    return run_a, run_b, compare_runs(run_a, run_b, n_boot=N_BOOT, seed=0, out=out)


def test_comparison_writes_strict_json(compared):
    run_a, run_b, result = compared
    written = json.loads(result.out_path.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON: {c}"))
    assert written == result.comparison
    assert written["same_rows"]["checked"] is True
    assert written["difference"] == "run_a - run_b"
    assert set(written["labels"]) == {"pneumonia"}


def test_numbers_agree_with_the_runs_and_with_delong_on_their_predictions(compared):
    run_a, run_b, result = compared
    entry = result.comparison["labels"]["pneumonia"]
    a = pd.read_csv(run_a / "predictions.csv")
    b = pd.read_csv(run_b / "predictions.csv").set_index("path").loc[a["path"]].reset_index()
    expected = delong_test(a["pneumonia_true"], a["pneumonia_probability"], b["pneumonia_probability"])
    assert entry["delong"]["diff"] == pytest.approx(expected.diff)
    assert entry["delong"]["p_value"] == pytest.approx(expected.p_value)
    assert entry["delong"]["auc_a"] > entry["delong"]["auc_b"]
    assert entry["delong"]["p_value"] < 0.05
    boot = entry["paired_bootstrap"]
    assert boot["diff"] == pytest.approx(expected.diff)
    assert boot["n_boot"] == N_BOOT and 0 < boot["n_valid"] <= N_BOOT
    assert boot["ci_low"] <= boot["diff"] <= boot["ci_high"]
    assert entry["run_a"]["threshold_source"] == "youden on val"
    assert result.comparison["same_rows"]["n_patients"] < result.comparison["same_rows"]["n_images"]


def test_swapping_the_runs_flips_the_difference(compared):
    run_a, run_b, result = compared
    swapped = compare_runs(run_b, run_a, n_boot=N_BOOT, seed=0)
    assert swapped.out_path is None
    forward = result.comparison["labels"]["pneumonia"]
    backward = swapped.comparison["labels"]["pneumonia"]
    assert backward["delong"]["diff"] == pytest.approx(-forward["delong"]["diff"])
    assert backward["paired_bootstrap"]["ci_low"] == pytest.approx(-forward["paired_bootstrap"]["ci_high"])


def test_row_order_does_not_matter(compared):
    run_a, run_b, result = compared
    table = pd.read_csv(run_b / "predictions.csv")
    table.iloc[::-1].to_csv(run_b / "predictions.csv", index=False)
    again = compare_runs(run_a, run_b, n_boot=N_BOOT, seed=0)
    assert again.comparison["labels"] == result.comparison["labels"]


def test_runs_on_different_images_are_refused(compared):
    run_a, run_b, _ = compared
    table = pd.read_csv(run_b / "predictions.csv")
    table.loc[0, "path"] = "/elsewhere/other.png"
    table.to_csv(run_b / "predictions.csv", index=False)
    with pytest.raises(DataError, match=r"differ: 1 image\(s\) only in the first, 1 only in the second"):
        compare_runs(run_a, run_b, n_boot=N_BOOT)


def test_runs_with_different_labels_are_refused(compared):
    run_a, run_b, _ = compared
    table = pd.read_csv(run_b / "predictions.csv")
    table.loc[3, "pneumonia_true"] = 1 - table.loc[3, "pneumonia_true"]
    table.to_csv(run_b / "predictions.csv", index=False)
    with pytest.raises(DataError, match="label 'pneumonia' differs between the runs"):
        compare_runs(run_a, run_b, n_boot=N_BOOT)


def test_a_run_compared_with_itself_differs_by_zero(compared):
    run_a, _, _ = compared
    result = compare_runs(run_a, run_a, n_boot=N_BOOT)
    entry = result.comparison["labels"]["pneumonia"]
    assert entry["delong"]["diff"] == 0
    assert np.isclose(entry["paired_bootstrap"]["ci_low"], 0) and np.isclose(entry["paired_bootstrap"]["ci_high"], 0)
    assert entry["delong"]["p_value"] is None  # undefined (zero standard error), written as null
