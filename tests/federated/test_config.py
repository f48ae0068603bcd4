"""FederatedConfig: parsed once from Flower's flat run config, every key defaulted, bad keys/values named."""

from __future__ import annotations

import pytest

from radcnn.errors import ConfigError
from radcnn.federated.config import FederatedConfig


def test_empty_run_config_gives_the_defaults():
    fed = FederatedConfig.from_mapping({})
    assert fed == FederatedConfig()
    assert fed.strategy == "fedavg" and fed.num_server_rounds == 3 and fed.partition == "site"


def test_kebab_case_keys_and_string_values_are_typed():
    fed = FederatedConfig.from_mapping(
        {"num-server-rounds": "5", "proximal-mu": "0.1", "strategy": "fedprox", "resume": "true", "alpha": 2}
    )
    assert (fed.num_server_rounds, fed.proximal_mu, fed.strategy, fed.resume, fed.alpha) == (
        5,
        0.1,
        "fedprox",
        True,
        2.0,
    )
    assert isinstance(fed.alpha, float)


def test_record_round_trip():
    fed = FederatedConfig(strategy="fedadam", server_lr=0.05, local_epochs=2, partition="dirichlet", num_partitions=4)
    record = fed.to_record()
    assert record["server-lr"] == 0.05 and record["num-partitions"] == 4
    assert FederatedConfig.from_mapping(record) == fed


def test_other_apps_namespaced_keys_are_ignored():
    assert FederatedConfig.from_mapping({"other.key": 1}) == FederatedConfig()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"num-server-round": 3}, "unknown key(s) num-server-round"),
        ({"num-server-rounds": "three"}, "num-server-rounds: expected an integer"),
        ({"num-server-rounds": 2.5}, "num-server-rounds: expected an integer"),
        ({"resume": "yes"}, "resume: expected true or false"),
        ({"strategy": "fedsgd"}, "strategy must be one of fedavg, fedprox, fedadam"),
        ({"partition": "random"}, "partition must be one of site, dirichlet, quantity, iid"),
        ({"alpha": 0}, "alpha"),
        ({"resume": True, "overwrite": True}, "exclude each other"),
        ({"dp-epsilon": -1}, "dp-epsilon"),
    ],
)
def test_bad_values_are_named(values, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        FederatedConfig.from_mapping(values)
