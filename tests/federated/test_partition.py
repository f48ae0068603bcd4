"""Partitions: whole patients per client, by site or synthetic non-IID skew; the per-client report's counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from radcnn.errors import ConfigError, DataError
from radcnn.federated.partition import partition_report, partition_rows


def _table(n_patients: int = 40, per_patient: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    patients = np.repeat([f"P{i:03d}" for i in range(n_patients)], per_patient)
    positive = np.repeat(rng.random(n_patients) < 0.4, per_patient).astype(float)
    sites = np.repeat(rng.choice(["site_b", "site_a", "site_c"], n_patients), per_patient)
    table = pd.DataFrame({"patient_id": patients, "site": sites})
    return table, positive[:, None]


def _patients_whole(table, parts) -> bool:
    owners = pd.Series(parts.assignment).groupby(table["patient_id"].to_numpy()).nunique()
    return bool((owners == 1).all())


def test_site_partition_is_one_client_per_sorted_site():
    table, labels = _table()
    parts = partition_rows(table, labels, scheme="site")
    assert parts.names == ("site_a", "site_b", "site_c")
    for k, name in enumerate(parts.names):
        assert (table["site"].to_numpy()[parts.rows(k)] == name).all()


def test_site_partition_needs_the_column_and_the_right_client_count():
    table, labels = _table()
    with pytest.raises(DataError, match="needs a 'hospital' column"):
        partition_rows(table, labels, scheme="site", column="hospital")
    with pytest.raises(ConfigError, match="3 distinct 'site' values .* but 2 clients"):
        partition_rows(table, labels, scheme="site", num_partitions=2)


@pytest.mark.parametrize("scheme", ["dirichlet", "quantity", "iid"])
def test_synthetic_schemes_keep_patients_whole_are_seeded_and_leave_no_client_empty(scheme):
    table, labels = _table()
    first = partition_rows(table, labels, scheme=scheme, num_partitions=4, alpha=0.3, seed=1)
    again = partition_rows(table, labels, scheme=scheme, num_partitions=4, alpha=0.3, seed=1)
    np.testing.assert_array_equal(first.assignment, again.assignment)
    assert _patients_whole(table, first)
    assert set(first.assignment) == {0, 1, 2, 3}
    assert first.names == ("client_0", "client_1", "client_2", "client_3")


def test_dirichlet_small_alpha_skews_labels_more_than_large_alpha():
    table, labels = _table(n_patients=400, per_patient=1)

    def spread(alpha: float) -> float:
        rates = []
        for seed in range(5):
            parts = partition_rows(table, labels, scheme="dirichlet", num_partitions=4, alpha=alpha, seed=seed)
            rates += [labels[parts.rows(k), 0].mean() for k in range(4) if len(parts.rows(k)) > 5]
        return float(np.std(rates))

    assert spread(0.1) > 2 * spread(100.0)


def test_quantity_skew_changes_sizes_not_balance():
    table, labels = _table(n_patients=400, per_patient=1)
    parts = partition_rows(table, labels, scheme="quantity", num_partitions=4, alpha=0.5, seed=0)
    sizes = np.bincount(parts.assignment)
    assert sizes.max() > 2 * sizes.min()


def test_report_counts_by_hand():
    table = pd.DataFrame(
        {
            "patient_id": ["A", "A", "B", "C", "D"],
            "site": ["s1", "s1", "s1", "s2", "s2"],
            "split": ["train", "train", "val", "train", "val"],
        }
    )
    labels = np.array([[1.0], [0.0], [np.nan], [1.0], [0.0]])
    parts = partition_rows(table, labels, scheme="site")
    report = partition_report(table, labels, ("nodule",), parts)
    s1, s2 = report
    assert s1["name"] == "s1" and s1["splits"]["train"] == {
        "images": 2, "patients": 1, "positives": {"nodule": 1}, "known": {"nodule": 2}
    }  # fmt: skip
    assert s1["splits"]["val"] == {"images": 1, "patients": 1, "positives": {"nodule": 0}, "known": {"nodule": 0}}
    assert s2["splits"]["train"]["positives"] == {"nodule": 1} and s2["splits"]["val"]["images"] == 1


def test_the_server_counts_sites_from_the_data_whatever_min_available_nodes_says():
    from types import SimpleNamespace

    from radcnn.federated.config import FederatedConfig
    from radcnn.federated.task import server_partitions

    table, labels = _table()
    manifest = SimpleNamespace(table=table, labels=lambda: labels)
    data = SimpleNamespace(manifest=manifest)
    parts = server_partitions(data, FederatedConfig(min_available_nodes=2), seed=0)  # 3 sites, 2 awaited
    assert parts.names == ("site_a", "site_b", "site_c")
    parts = server_partitions(data, FederatedConfig(partition="iid", min_available_nodes=2), seed=0)
    assert parts.names == ("client_0", "client_1")
