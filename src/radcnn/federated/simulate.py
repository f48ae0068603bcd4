"""`simulate`: the whole federated run on Flower's simulation engine (`flwr.simulation.run_simulation`, Ray
backend), one virtual SuperNode per client, in this process and Ray's workers.

Flower's ``run_simulation`` gives the ServerApp no run config, so the settings travel as overrides baked into the
ServerApp (`make_server_app`); clients get everything from the server's messages, as on the deployment engine.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from radcnn.errors import ConfigError, MissingExtraError
from radcnn.federated.config import FederatedConfig
from radcnn.runs import FEDERATED_HISTORY, RunDir, is_run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimulationResult:
    run_dir: Path
    rounds: int
    best_round: int
    best_val_auc: float | None
    num_clients: int


def require_flower(*, simulation: bool = False) -> None:
    if importlib.util.find_spec("flwr") is None:
        raise MissingExtraError("flwr", "federated")
    if simulation and importlib.util.find_spec("ray") is None:
        raise MissingExtraError("ray (Flower's simulation engine)", "federated")


def count_clients(fed: FederatedConfig) -> int:
    """One client per site for site partitioning (read from the data), else num-partitions."""
    if fed.partition != "site":
        if fed.num_partitions < 1:
            raise ConfigError(f"partition {fed.partition!r}: give the number of clients (num-partitions / --clients)")
        return fed.num_partitions
    from radcnn.data.prepare import load_manifest, resolve_layout
    from radcnn.federated.task import load_run_config
    from radcnn.runs import partial_dir

    # a resumed run uses the configuration it recorded
    config = RunDir(partial_dir(fed.run_dir)).config() if fed.resume and not fed.config else load_run_config(fed)
    manifest = load_manifest(config.data, resolve_layout(config.data))
    if fed.partition_column not in manifest.table.columns:
        raise ConfigError(
            f"{config.data.source}: no {fed.partition_column!r} column to partition by; columns: "
            f"{', '.join(manifest.table.columns)} (or use partition dirichlet/quantity/iid with a number of clients)"
        )
    return int(manifest.table[fed.partition_column].astype(str).nunique())


def simulate(fed: FederatedConfig, *, num_clients: int = 0, cpus: int | None = None) -> SimulationResult:
    """Run `fed` on the simulation engine with `num_clients` virtual SuperNodes (0: derived, see count_clients).

    `cpus`: CPUs Ray may use (default: all of this machine's, at most the number of clients); each client takes one.
    """
    require_flower(simulation=True)
    num_clients = num_clients or count_clients(fed)
    if fed.partition != "site" and fed.num_partitions and fed.num_partitions != num_clients:
        raise ConfigError(f"num-partitions {fed.num_partitions} differs from the {num_clients} clients asked for")
    fed = fed.with_changes(num_partitions=num_clients)
    for name in ("min_available_nodes", "min_train_nodes"):
        if getattr(fed, name) > num_clients:
            raise ConfigError(
                f"{name.replace('_', '-')} is {getattr(fed, name)} but only {num_clients} clients will run; "
                "the server would wait for ever"
            )
    from flwr.simulation import run_simulation

    from radcnn.federated.client_app import make_client_app
    from radcnn.federated.server_app import check_privacy, make_server_app

    check_privacy(fed)  # an unreachable ε or a setting DP-SGD cannot honour ends here, before Ray starts

    cpus = cpus or min(num_clients, os.cpu_count() or 1)
    backend = {
        "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
        "init_args": {"num_cpus": cpus, "num_gpus": 0, "include_dashboard": False, "log_to_driver": True},
    }
    log.info("simulating %d clients (%s, %d rounds) on %d CPU(s)", num_clients, fed.strategy,
             fed.num_server_rounds, cpus)  # fmt: skip
    run_simulation(
        server_app=make_server_app(fed.to_record()),
        client_app=make_client_app(),
        num_supernodes=num_clients,
        backend_config=backend,
    )
    return summarise(fed.run_dir, num_clients)


def summarise(run_dir: str | Path, num_clients: int = 0) -> SimulationResult:
    """What a finished federated run directory says about itself."""
    if not is_run(run_dir):
        from radcnn.errors import FederatedError

        raise FederatedError(f"{run_dir}: the federated run did not finish (see the log above for the server's error)")
    run = RunDir(run_dir)
    history = run.read_json(FEDERATED_HISTORY)
    best = run.best()
    return SimulationResult(
        Path(run_dir), len(history["rounds"]), int(best.get("round", 0)), best.get("val_auc"), num_clients
    )
