"""DP-SGD on every federated client: one noise plan for the whole run, and ε spent so far after every round.

A client trains with `radcnn.training.dp.make_private` (Opacus's `make_private_with_epsilon`), made afresh each
round on the global weights and released again (`PrivateTraining.release`). A fresh PrivacyEngine per round would
restart Opacus's accountant, so nothing here reads ε from it: the noise multiplier σ is planned ONCE for every
step the client will take in the run — num-server-rounds × local-epochs epochs of ⌈N/B⌉ steps at sampling rate
q = 1/⌈N/B⌉ — against the target (ε, δ), and ε after round r is `epsilon_after(σ, q, r × steps per round, δ)`: the
accountant's ε of all noisy steps up to round r together (adaptive composition of the same Gaussian mechanism).
That counts every round up to r as taken, an upper bound for a client that sat a round out.

The server makes the same plan from its partition of the data before round 1 (`plan_clients`): a target that no
noise level reaches ends the run there, with one ConfigError, before any client trains. It records the result in
the run's privacy.json (`privacy_record`, the fields of a centralised DP run, per round instead of per epoch).
"""

from __future__ import annotations

import importlib
import math
import warnings
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any

from radcnn.config import DPConfig, RunConfig
from radcnn.errors import ConfigError, MissingExtraError
from radcnn.federated.config import FederatedConfig
from radcnn.training.dp import ACCOUNTANT, epsilon_after, resolve_delta, target_reachable


def dp_config(fed: FederatedConfig) -> DPConfig:
    return DPConfig(
        epsilon=fed.dp_epsilon,
        delta=fed.dp_delta or None,
        max_grad_norm=fed.dp_max_grad_norm,
        poisson_sampling=fed.dp_poisson_sampling,
    )


def check_settings(fed: FederatedConfig, config: RunConfig) -> None:
    """Refuse settings that DP-SGD on the clients cannot honour, naming each."""
    if fed.dp_epsilon <= 0:
        return
    problems = []
    if fed.strategy == "fedprox":
        problems.append(
            "strategy fedprox: Opacus replaces each gradient by the clipped, noised sum of per-sample gradients, "
            "which would silently drop FedProx's proximal term; use fedavg or fedadam"
        )
    if fed.resume:
        problems.append("resume: the clients' privacy accounting restarts with the run; start a new run")
    if config.train.precision == "bf16":
        problems.append("train.precision bf16: per-sample gradients are computed in fp32 (use 'auto' or '32')")
    if problems:
        raise ConfigError("dp-epsilon > 0 (DP-SGD on every client): " + "; ".join(problems))


@dataclass(frozen=True)
class ClientPlan:
    name: str
    n_train: int
    batches_per_epoch: int  # = len(train loader): ⌈N / batch size⌉
    steps_per_round: int
    noise_multiplier: float
    sample_rate: float
    delta: float

    def epsilon_after_round(self, server_round: int) -> float:
        return epsilon_after(self.noise_multiplier, self.sample_rate, server_round * self.steps_per_round, self.delta)


def plan_client(name: str, n_train: int, batch_size: int, fed: FederatedConfig) -> ClientPlan:
    """σ for num-server-rounds × local-epochs epochs of this client's data, as `make_private` computes it."""
    dp = dp_config(fed)
    delta = resolve_delta(dp, n_train)
    batches = math.ceil(n_train / batch_size)
    epochs = fed.num_server_rounds * fed.local_epochs
    sample_rate = 1.0 / batches  # Opacus's rule for a loader: 1 / len(loader)
    unreachable = ConfigError(
        f"dp-epsilon {fed.dp_epsilon} at δ = {delta:.3g} cannot be reached by client {name} in the planned "
        f"{epochs * batches} steps ({fed.num_server_rounds} round(s) × {fed.local_epochs} local epoch(s) × "
        f"{batches} batches of {batch_size} from {n_train} images): no noise level is large enough; raise "
        "dp-epsilon or dp-delta, or plan fewer rounds or local epochs"
    )
    if not target_reachable(fed.dp_epsilon, sample_rate, epochs * batches, delta):
        raise unreachable
    try:
        utils = importlib.import_module("opacus.accountants.utils")
    except ImportError:
        raise MissingExtraError("opacus", "federated") from None
    try:
        with warnings.catch_warnings():
            # The search over σ warns when the RDP order hits the end of its range (a valid, looser bound).
            warnings.filterwarnings("ignore", message=".*Optimal order is the largest alpha.*")
            sigma = utils.get_noise_multiplier(
                target_epsilon=fed.dp_epsilon, target_delta=delta, sample_rate=sample_rate, epochs=epochs,
                accountant=ACCOUNTANT,
            )  # fmt: skip
    except ValueError as exc:
        if "budget is too low" not in str(exc):
            raise ConfigError(f"Opacus cannot plan DP-SGD for client {name}: {exc}") from None
        raise unreachable from None
    return ClientPlan(name, n_train, batches, fed.local_epochs * batches, float(sigma), sample_rate, delta)


def plan_clients(train_sizes: dict[str, int], batch_size: int, fed: FederatedConfig) -> list[ClientPlan]:
    """One plan per client (name → training images); the first unreachable target is a ConfigError."""
    empty = [name for name, n in train_sizes.items() if n < 1]
    if empty:
        raise ConfigError(f"DP-SGD needs training images on every client; none in: {', '.join(empty)}")
    return [plan_client(name, n, batch_size, fed) for name, n in train_sizes.items()]


def privacy_record(
    fed: FederatedConfig,
    plans: list[ClientPlan],
    batch_size: int,
    model_changes: list[str],
    history: dict,
    best_round: int | None,
) -> dict[str, Any]:
    """privacy.json of a federated DP run: the fields of a centralised DP run (radcnn.training.dp_fit), stated for
    the client with the largest ε (the run's guarantee), ε per round, and every client's plan."""
    rounds = [r for r in history.get("rounds", []) if "dp_epsilon" in r]
    worst = max(plans, key=lambda p: (p.epsilon_after_round(fed.num_server_rounds), p.delta))
    per_round = [
        {"epoch": r["round"], "round": r["round"], "epsilon": r["dp_epsilon"],
         "steps": r["round"] * worst.steps_per_round}
        for r in rounds
    ]  # fmt: skip
    selected = next((e["epsilon"] for e in per_round if e["round"] == best_round), None)
    return {
        "mechanism": "DP-SGD (Opacus) on every federated client",
        "opacus_version": metadata.version("opacus"),
        "target_epsilon": fed.dp_epsilon,
        "delta": worst.delta,
        "delta_rule": "1/N of the client's training set" if not fed.dp_delta else "configured",
        "n_train": worst.n_train,
        "poisson_sampling": fed.dp_poisson_sampling,
        "expected_batch_size": batch_size,
        "batches_per_epoch": worst.batches_per_epoch,
        "epochs_planned": fed.num_server_rounds * fed.local_epochs,
        "noise_multiplier": worst.noise_multiplier,
        "sample_rate": worst.sample_rate,
        "max_grad_norm": fed.dp_max_grad_norm,
        "accountant": ACCOUNTANT,
        "model_changes": list(model_changes),
        "secure_rng": False,
        "epsilon_per_epoch": per_round,
        "epsilon_spent": per_round[-1]["epsilon"] if per_round else 0.0,
        "epochs_run": len(per_round) * fed.local_epochs,
        "selected_epoch": best_round,
        "selected_epoch_epsilon": selected,
        "unit": "round",  # epsilon_per_epoch lists server rounds (local-epochs epochs each)
        "worst_client": worst.name,
        "clients": [asdict(p) for p in plans],
    }
