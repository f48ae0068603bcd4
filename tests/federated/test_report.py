"""The report's federated section from a run's federated files (numbers checked by hand)."""

from __future__ import annotations

import pytest

from radcnn.reporting.report_federated import federated_section
from radcnn.runs import FEDERATED_BASELINES, FEDERATED_HISTORY, FEDERATED_PARTITIONS, RunDir


def _split(images, patients, positives):
    return {"images": images, "patients": patients, "positives": {"nodule": positives}, "known": {"nodule": images}}


def test_federated_section(tmp_path):
    run = RunDir(tmp_path)
    assert federated_section(run) is None  # not a federated run
    clients = [
        {"node": 1, "name": "site_a", "train_loss": 0.5, "num-examples": 10.0},
        {"node": 2, "name": "site_b", "train_loss": 0.9, "num-examples": 30.0},
    ]
    run.write_json(
        FEDERATED_HISTORY,
        {
            "strategy": "fedavg",
            "planned_rounds": 2,
            "settings": {"local-epochs": 2, "partition": "site"},
            "rounds": [
                {"round": 1, "val": {"auc": 0.7, "loss": 0.6}, "accepted": 2, "replies": 3, "clients": clients,
                 "rejected": [{"node": 3, "reason": "tensor 'w' contains NaN or infinite values"}]},
                {"round": 2, "val": {"auc": 0.8, "loss": 0.5}, "accepted": 2, "replies": 2, "clients": clients,
                 "rejected": [], "client_evaluation": [{"name": "site_a", "auc": 0.75}]},
            ],
        },
    )  # fmt: skip
    run.write_json(
        FEDERATED_PARTITIONS,
        {"clients": [{"client": 0, "name": "site_a", "splits": {"train": _split(10, 4, 3), "val": _split(5, 2, 1)}},
                     {"client": 1, "name": "site_b", "splits": {"train": _split(30, 12, 9)}}]},
    )  # fmt: skip
    section = federated_section(run)
    assert section["strategy"] == "fedavg" and section["local_epochs"] == 2 and section["comparison"] is None
    first = section["rounds"][0]
    assert first["train_loss"] == pytest.approx((10 * 0.5 + 30 * 0.9) / 40)  # weighted by training images
    assert first["rejected"][0]["node"] == 3 and (first["accepted"], first["replies"]) == (2, 3)
    a, b = section["sites"]
    assert (a["train_images"], a["train_patients"], a["train_positives"], a["val_images"]) == (10, 4, {"nodule": 3}, 5)
    assert a["local_val_auc"] == 0.75 and b["local_val_auc"] is None and b["val_images"] == 0

    run.write_json(
        FEDERATED_BASELINES,
        {"epochs": 4, "federated": {"val_auc": 0.8, "test_auc": 0.78, "site_test_auc": {"site_a": 0.7}},
         "centralised": {"val_auc": 0.81, "test_auc": 0.79, "site_test_auc": {"site_a": 0.72}},
         "sites": [{"name": "site_a", "val_auc": 0.6, "test_auc": 0.62, "site_test_auc": {"site_a": 0.65}},
                   {"name": "site_b", "note": "no labelled training images"}],
         "comparison": {"centralised": {"diff": -0.01, "ci_low": -0.03, "ci_high": 0.01},
                        "site_a": {"diff": 0.16, "ci_low": 0.05, "ci_high": 0.27}}},
    )  # fmt: skip
    section = federated_section(run)
    assert [c["model"] for c in section["comparison"]] == [
        "federated (this run)", "centralised (pooled data)", "site_a alone", "site_b alone"
    ]  # fmt: skip
    assert section["comparison"][2]["test_auc"] == 0.62 and section["comparison"][3]["test_auc"] is None
    verdicts = [c.get("verdict") for c in section["comparison"]]
    assert verdicts == [None, "no measurable difference", "federated better", None]
    assert (section["comparison"][2]["ci_low"], section["comparison"][2]["ci_high"]) == (0.05, 0.27)
    a = section["sites"][0]
    assert (a["federated_test_auc"], a["centralised_test_auc"], a["alone_test_auc"]) == (0.7, 0.72, 0.65)
    assert section["baseline_epochs"] == 4
