"""Flower's FedAvg / FedProx / FedAdam with radcnn's aggregation guard and per-round bookkeeping.

The guard (`GuardMixin`) looks at every training reply before Flower aggregates it: a reply that carries an
error (a client that crashed or went offline), weights with a NaN/inf, a missing, extra or wrongly shaped
tensor, or no positive example count is REJECTED and logged with the node and the reason — it is never averaged
in. A round aggregates when at least ``min-train-nodes`` updates were accepted (and says how many of how many);
with fewer, the run stops with a FederatedError that lists every rejected reply and why. Everything decided is kept in `round_log`
so the ServerApp can write it into the run's history.

Aggregation itself is Flower's: weighted by each reply's ``num-examples`` (FedAvg, FedProx), plus the server-side
Adam step of FedAdam (Reddi et al. 2021).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

import numpy as np

from radcnn.errors import FederatedError
from radcnn.federated.config import FederatedConfig

log = logging.getLogger(__name__)

NUM_EXAMPLES = "num-examples"


def short_reason(reason: str) -> str:
    """A client error as one line: Flower wraps it as "<class 'X'>:<'message'>" (and Ray adds its traceback, and
    ClientAppException a "Message: " prefix); keep the exception's name and its message."""
    text = str(reason)
    if "Message: " in text:
        text = text.rsplit("Message: ", 1)[1]
    else:
        match = re.match(r"<class '([^']+)'>:<'(.*)'>\s*$", text, re.S)
        if match:
            text = f"{match.group(1).rsplit('.', 1)[-1]}: {match.group(2)}"
    text = text.strip().removesuffix("'>").strip()
    return text.splitlines()[0].strip() if text else "no reason given"


def check_reply(content, expected: dict[str, tuple[tuple[int, ...], str]]) -> str | None:
    """Why a training reply's content cannot be aggregated, or None when it can (pure, unit-tested)."""
    if "arrays" not in content or "metrics" not in content:
        return "the reply has no 'arrays' or no 'metrics' record"
    metrics = content["metrics"]
    n = metrics.get(NUM_EXAMPLES) if hasattr(metrics, "get") else None
    if not isinstance(n, int | float) or not n > 0:
        return f"'{NUM_EXAMPLES}' must be a positive number, got {n!r}"
    arrays = content["arrays"]
    missing = sorted(set(expected) - set(arrays.keys()))
    extra = sorted(set(arrays.keys()) - set(expected))
    if missing or extra:
        return f"weights do not match the global model (missing: {missing[:5]}, unexpected: {extra[:5]})"
    for name, (shape, _dtype) in expected.items():
        got = tuple(arrays[name].shape)
        if got != shape:
            return f"tensor {name!r} has shape {got}, expected {shape}"
    for name in expected:
        values = arrays[name].numpy()
        if values.dtype.kind in "fc" and not np.isfinite(values).all():
            return f"tensor {name!r} contains NaN or infinite values"
    return None


class GuardMixin:
    """Put BEFORE a Flower strategy class in the bases (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.expected: dict[str, tuple[tuple[int, ...], str]] = {}
        self.round_log: dict[int, dict] = {}
        self.round_offset = 0  # rounds already done before a resume
        self.sent = 0  # training messages sent this round

    def configure_train(self, server_round, arrays, config, grid):
        # Flower counts rounds from 1 at every start; after a resume the clients (their shuffling seed, DP's ε)
        # and FedAdam's bias correction need the run's round number, so the strategy below sees that one.
        self.expected = {k: (tuple(v.shape), str(v.dtype)) for k, v in arrays.items()}
        messages = list(super().configure_train(self.round_offset + server_round, arrays, config, grid))
        self.sent = len(messages)
        return messages

    def aggregate_train(self, server_round: int, replies: Iterable):
        replies = list(replies)
        accepted, rejected = [], []
        for msg in replies:
            node = msg.metadata.src_node_id
            reason = (
                f"client error: {short_reason(msg.error.reason)}"
                if msg.has_error()
                else check_reply(msg.content, self.expected)
            )
            if reason is None:
                accepted.append(msg)
                continue
            log.warning("round %d: rejected the update of node %s: %s", self.round_offset + server_round, node, reason)
            rejected.append({"node": int(node), "reason": str(reason)})
        number = self.round_offset + server_round
        missing = max(self.sent - len(replies), 0)
        if missing:  # Flower returns what arrived within round-timeout; a client that vanished sends nothing
            log.warning(
                "round %d: %d of %d sampled clients sent no reply within round-timeout", number, missing, self.sent
            )
        entry = self.round_log.setdefault(number, {})
        entry.update(
            {
                "sampled": max(self.sent, len(replies)),
                "replies": len(replies),
                "accepted": len(accepted),
                "rejected": rejected,
                "clients": _client_rows(accepted),
            }
        )
        if len(accepted) < max(1, self.min_train_nodes):
            entry["aggregated"] = False
            reasons = [f"node {r['node']}: {r['reason']}" for r in rejected]
            reasons += [f"{missing} client(s) sent no reply within round-timeout"] if missing else []
            reasons = "; ".join(reasons) or "no replies"
            raise FederatedError(
                f"round {number}: {len(accepted)} of {entry['sampled']} client updates could be "
                f"used, fewer than min-train-nodes {self.min_train_nodes} — {reasons}"
            )
        entry["aggregated"] = True
        log.info(
            "round %d: aggregating %d of %d updates (min-train-nodes %d)%s",
            self.round_offset + server_round, len(accepted), len(replies), self.min_train_nodes,
            f"; {len(rejected)} rejected" if rejected else "",
        )  # fmt: skip
        return super().aggregate_train(number, accepted)

    def aggregate_evaluate(self, server_round: int, replies: Iterable):
        replies = list(replies)
        usable = []
        for msg in replies:
            if msg.has_error():
                log.warning("round %d: evaluation failed on node %s: %s", self.round_offset + server_round,
                            msg.metadata.src_node_id, short_reason(msg.error.reason))  # fmt: skip
            elif msg.content["metrics"].get(NUM_EXAMPLES, 0) > 0:
                usable.append(msg)
        entry = self.round_log.setdefault(self.round_offset + server_round, {})
        entry["client_evaluation"] = _client_rows(usable)
        return _weighted_metrics(usable) if usable else None


def _weighted_metrics(messages: list):
    """Example-weighted mean of each metric over the clients that report it. Flower's own aggregation requires every
    reply to carry the same keys, but a client whose val split has one class has no AUC (it leaves the key out
    rather than send NaN), which would make Flower drop the whole round's evaluation."""
    from flwr.app import MetricRecord

    sums: dict[str, float] = {}
    weights: dict[str, float] = {}
    for msg in messages:
        metrics = msg.content["metrics"]
        weight = float(metrics.get(NUM_EXAMPLES, 0))
        for key, value in metrics.items():
            if key != NUM_EXAMPLES and isinstance(value, int | float):
                sums[key] = sums.get(key, 0.0) + weight * float(value)
                weights[key] = weights.get(key, 0.0) + weight
    return MetricRecord({k: sums[k] / weights[k] for k in sums if weights[k] > 0})


def _client_rows(messages: list) -> list[dict]:
    rows = []
    for msg in messages:
        metrics = {k: float(v) for k, v in msg.content["metrics"].items() if isinstance(v, int | float)}
        name = msg.content["config"].get("client-name") if "config" in msg.content else None
        rows.append({"node": int(msg.metadata.src_node_id), "name": name, **metrics})
    return sorted(rows, key=lambda r: (str(r["name"]), r["node"]))


def optimizer_state(strategy) -> dict[str, np.ndarray]:
    """The server optimiser's moments (FedAdam's m_t and v_t) as flat name → array; empty for FedAvg/FedProx."""
    state = {}
    for moment in ("m_t", "v_t"):
        for name, value in (getattr(strategy, moment, None) or {}).items():
            state[f"{moment}/{name}"] = np.asarray(value)
    return state


def restore_optimizer_state(strategy, state: dict[str, np.ndarray]) -> None:
    """Put saved moments back (resume): FedAdam then continues exactly as if never interrupted."""
    for moment in ("m_t", "v_t"):
        values = {k.split("/", 1)[1]: v for k, v in state.items() if k.startswith(moment + "/")}
        if values:
            setattr(strategy, moment, values)


def make_strategy(fed: FederatedConfig, *, initial_arrays=None):
    """The configured Flower strategy with the guard in front of it."""
    from flwr.serverapp import strategy as flwr_strategy

    common = {
        "fraction_train": fed.fraction_train,
        "fraction_evaluate": fed.fraction_evaluate,
        "min_train_nodes": fed.min_train_nodes,
        "min_evaluate_nodes": fed.min_evaluate_nodes if fed.fraction_evaluate > 0 else 0,
        "min_available_nodes": fed.min_available_nodes,
        "weighted_by_key": NUM_EXAMPLES,
    }
    if fed.strategy == "fedprox":
        base, extra = flwr_strategy.FedProx, {"proximal_mu": fed.proximal_mu}
    elif fed.strategy == "fedadam":
        base = flwr_strategy.FedAdam
        extra = {"eta": fed.server_lr, "beta_1": fed.beta_1, "beta_2": fed.beta_2, "tau": fed.tau}
    else:
        base, extra = flwr_strategy.FedAvg, {}
    guarded = type(f"Guarded{base.__name__}", (GuardMixin, base), {})
    return guarded(**common, **extra)
