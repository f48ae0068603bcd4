"""`FederatedConfig`: every setting of a federated run, typed and defaulted, parsed ONCE from Flower's flat run
config (``[tool.flwr.app.config]`` in the app's pyproject.toml, ``flwr run --run-config``, or the `simulate`
call) — never read key by key with ``run_config[...]``, which breaks as soon as a key is missing.

The server sends the parsed settings to every client inside each message's ConfigRecord (`to_record`), so a
client never needs the run config itself: it parses the record with the same function (`from_mapping`).
Keys are Flower's kebab-case (``num-server-rounds``); the dataclass fields are their snake_case twins.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from radcnn.errors import ConfigError

STRATEGIES = ("fedavg", "fedprox", "fedadam")
RECORD_CONFIG = "radcnn-config"  # the radcnn config (YAML text) inside every message's ConfigRecord
RECORD_SPEC = "model-spec"  # the global model's ModelSpec (JSON)
PARTITIONS = ("site", "dirichlet", "quantity", "iid")


@dataclass(frozen=True)
class FederatedConfig:
    config: str = ""  # a radcnn run config (YAML/TOML): data, model and train settings of every client
    data_source: str = ""  # overrides data.source of that config (server's held-out set and clients' data)
    run_dir: str = "runs/federated"  # where the ServerApp writes the run (a normal radcnn run + federated/)
    overwrite: bool = False
    resume: bool = False  # continue an interrupted run from its last completed round
    num_server_rounds: int = 3
    local_epochs: int = 1
    strategy: str = "fedavg"  # fedavg | fedprox | fedadam (all weighted by each client's number of examples)
    proximal_mu: float = 0.01  # FedProx: weight of (mu/2)·||w - w_global||² in each client's loss
    server_lr: float = 0.01  # FedAdam: server learning rate (eta)
    beta_1: float = 0.9  # FedAdam
    beta_2: float = 0.99  # FedAdam
    tau: float = 1e-3  # FedAdam: adaptivity
    fraction_train: float = 1.0
    fraction_evaluate: float = 1.0
    min_train_nodes: int = 2  # a round aggregates when at least this many updates were accepted
    min_evaluate_nodes: int = 2
    min_available_nodes: int = 2  # the server waits for this many connected clients before a round
    round_timeout: float = 3600.0  # seconds the server waits for replies in one round
    partition: str = "site"  # site (a metadata column) | dirichlet (label skew) | quantity (size skew) | iid
    partition_column: str = "site"
    alpha: float = 0.5  # Dirichlet concentration for label/quantity skew (smaller = more skewed)
    num_partitions: int = 0  # 0: the number of clients (simulation: num-supernodes; deployment: node config)
    seed: int = -1  # partition and client seed; -1: the radcnn config's train.seed
    dp_epsilon: float = 0.0  # > 0: DP-SGD on every client to this (epsilon, delta) over the planned epochs
    dp_delta: float = 0.0  # 0: 1/N (N = the client's training images)
    dp_max_grad_norm: float = 1.0
    dp_poisson_sampling: bool = True

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"strategy must be one of {', '.join(STRATEGIES)}; got {self.strategy!r}")
        if self.partition not in PARTITIONS:
            raise ConfigError(f"partition must be one of {', '.join(PARTITIONS)}; got {self.partition!r}")
        if self.num_server_rounds < 1 or self.local_epochs < 1:
            raise ConfigError("num-server-rounds and local-epochs must be at least 1")
        if self.min_train_nodes < 1 or self.min_available_nodes < 1 or self.min_evaluate_nodes < 0:
            raise ConfigError("min-train-nodes and min-available-nodes must be at least 1, min-evaluate-nodes ≥ 0")
        if not 0 < self.fraction_train <= 1 or not 0 <= self.fraction_evaluate <= 1:
            raise ConfigError("fraction-train must lie in (0, 1] and fraction-evaluate in [0, 1]")
        if self.alpha <= 0 or self.proximal_mu < 0 or self.server_lr <= 0 or self.round_timeout <= 0:
            raise ConfigError("alpha, server-lr and round-timeout must be > 0 and proximal-mu ≥ 0")
        if self.dp_epsilon < 0 or self.dp_delta < 0 or self.dp_max_grad_norm <= 0:
            raise ConfigError("dp-epsilon and dp-delta must be ≥ 0 and dp-max-grad-norm > 0")
        if self.resume and self.overwrite:
            raise ConfigError("resume and overwrite exclude each other")

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name.replace("_", "-") for f in dataclasses.fields(cls)]

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], where: str = "run config") -> FederatedConfig:
        """Parse Flower's flat run config (kebab-case keys; snake_case accepted too); unknown keys and wrong types
        are ConfigErrors naming the key. Keys of other apps' namespaces (containing a dot) are ignored."""
        hints = typing.get_type_hints(cls)
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        unknown = []
        for key, value in values.items():
            if "." in key:
                continue
            name = key.replace("-", "_")
            if name not in known:
                unknown.append(key)
                continue
            kwargs[name] = _typed(hints[name], value, f"{where}: {key}")
        if unknown:
            raise ConfigError(
                f"{where}: unknown key(s) {', '.join(sorted(unknown))}; valid keys: {', '.join(cls.keys())}"
            )
        return cls(**kwargs)

    def to_record(self) -> dict[str, Any]:
        """The settings as Flower ConfigRecord values (str, int, float, bool), kebab-case keys."""
        return {f.name.replace("_", "-"): getattr(self, f.name) for f in dataclasses.fields(self)}

    def with_changes(self, **changes: Any) -> FederatedConfig:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def _typed(hint: Any, value: Any, where: str) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if hint in (int, float):
        if isinstance(value, str):
            try:
                value = float(value) if hint is float else int(value)
            except ValueError:
                expected = "a number" if hint is float else "an integer"
                raise ConfigError(f"{where}: expected {expected}, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int | float) or (hint is int and value != int(value)):
            raise ConfigError(f"{where}: expected {'a number' if hint is float else 'an integer'}, got {value!r}")
        return hint(value)
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    return str(value)
