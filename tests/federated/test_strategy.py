"""The aggregation guard, on real Flower messages: a NaN, misshapen or failed update is rejected and logged, never
averaged in; the accepted ones are averaged weighted by their example counts (checked by hand)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

flwr_app = pytest.importorskip("flwr.app")
from flwr.app import (  # noqa: E402
    Array,
    ArrayRecord,
    ConfigRecord,
    Error,
    Message,
    MessageType,
    Metadata,
    MetricRecord,
    RecordDict,
)

from radcnn.errors import FederatedError  # noqa: E402
from radcnn.federated.config import FederatedConfig  # noqa: E402
from radcnn.federated.strategy import (  # noqa: E402
    check_reply,
    make_strategy,
    optimizer_state,
    restore_optimizer_state,
)

GLOBAL = {"w": np.zeros((2, 3), dtype=np.float32), "b": np.zeros(3, dtype=np.float32)}


def _reply(node: int, arrays: dict | None, n: float = 10, error: str | None = None) -> Message:
    # A reply as the SuperLink hands it to the ServerApp (metadata set by Flower's runtime, here by hand).
    metadata = Metadata(1, f"m{node}", node, 0, "request", "1", 0.0, 3600.0, MessageType.TRAIN)
    if error is not None:
        return Message(error=Error(code=3, reason=error), metadata=metadata)
    content = RecordDict(
        {
            "arrays": ArrayRecord([], keep_input=True) if arrays is None else ArrayRecord(
                {k: _array(v) for k, v in arrays.items()}),
            "metrics": MetricRecord({"num-examples": n, "train_loss": 0.5}),
            "config": ConfigRecord({"client-name": f"site{node}"}),
        }
    )  # fmt: skip
    return Message(content=content, metadata=metadata)


def _array(values: np.ndarray) -> Array:
    return Array(np.asarray(values))


def _strategy(min_train_nodes: int = 1):
    strategy = make_strategy(FederatedConfig(min_train_nodes=min_train_nodes))
    strategy.expected = {k: (v.shape, str(v.dtype)) for k, v in GLOBAL.items()}
    return strategy


def test_check_reply_names_each_problem():
    expected = {k: (v.shape, str(v.dtype)) for k, v in GLOBAL.items()}
    good = _reply(1, {"w": np.ones((2, 3), np.float32), "b": np.ones(3, np.float32)}).content
    assert check_reply(good, expected) is None
    nan = _reply(1, {"w": np.full((2, 3), np.nan, np.float32), "b": np.ones(3, np.float32)}).content
    assert "'w' contains NaN" in check_reply(nan, expected)
    shape = _reply(1, {"w": np.ones((3, 2), np.float32), "b": np.ones(3, np.float32)}).content
    assert "'w' has shape (3, 2), expected (2, 3)" in check_reply(shape, expected)
    missing = _reply(1, {"w": np.ones((2, 3), np.float32)}).content
    assert "missing: ['b']" in check_reply(missing, expected)
    empty = _reply(1, {"w": np.ones((2, 3), np.float32), "b": np.ones(3, np.float32)}, n=0).content
    assert "num-examples" in check_reply(empty, expected)


def test_bad_updates_are_rejected_logged_and_not_averaged(caplog):
    strategy = _strategy()
    replies = [
        _reply(1, {"w": np.full((2, 3), 1.0, np.float32), "b": np.full(3, 1.0, np.float32)}, n=10),
        _reply(2, {"w": np.full((2, 3), 4.0, np.float32), "b": np.full(3, 4.0, np.float32)}, n=30),
        _reply(3, {"w": np.full((2, 3), np.nan, np.float32), "b": np.zeros(3, np.float32)}, n=1000),
        _reply(4, {"w": np.full((4, 3), 9.0, np.float32), "b": np.zeros(3, np.float32)}, n=1000),
        _reply(5, None, error="ClientApp died"),
    ]
    with caplog.at_level(logging.WARNING, logger="radcnn.federated.strategy"):
        arrays, metrics = strategy.aggregate_train(1, replies)
    # (10·1 + 30·4) / 40 = 3.25 — nodes 3, 4 and 5 did not take part
    np.testing.assert_allclose(arrays["w"].numpy(), np.full((2, 3), 3.25))
    np.testing.assert_allclose(arrays["b"].numpy(), np.full(3, 3.25))
    entry = strategy.round_log[1]
    assert entry["accepted"] == 2 and entry["replies"] == 5 and entry["aggregated"]
    reasons = {r["node"]: r["reason"] for r in entry["rejected"]}
    assert "NaN" in reasons[3] and "shape (4, 3)" in reasons[4] and "ClientApp died" in reasons[5]
    logged = caplog.text
    assert "rejected the update of node 3" in logged and "node 5" in logged
    assert [c["name"] for c in entry["clients"]] == ["site1", "site2"]


def test_too_few_usable_updates_stop_the_run_with_every_reason():
    strategy = _strategy(min_train_nodes=2)
    replies = [
        _reply(1, {"w": np.ones((2, 3), np.float32), "b": np.ones(3, np.float32)}),
        _reply(2, None, error="no training images with known labels"),
    ]
    with pytest.raises(FederatedError, match=r"round 1: 1 of 2 client updates .* min-train-nodes 2 .*known labels"):
        strategy.aggregate_train(1, replies)


def test_fedprox_and_fedadam_keep_the_guard():
    for name in ("fedprox", "fedadam"):
        strategy = make_strategy(FederatedConfig(strategy=name))
        assert type(strategy).__name__.startswith("Guarded") and hasattr(strategy, "round_log")


def test_fedadam_steps_from_the_guarded_average_by_hand():
    strategy = make_strategy(FederatedConfig(strategy="fedadam", server_lr=0.01, min_train_nodes=1))
    strategy.expected = {k: (v.shape, str(v.dtype)) for k, v in GLOBAL.items()}
    strategy.current_arrays = {k: v.copy() for k, v in GLOBAL.items()}  # what configure_train records
    replies = [
        _reply(1, {"w": np.full((2, 3), 1.0, np.float32), "b": np.full(3, 1.0, np.float32)}, n=10),
        _reply(2, {"w": np.full((2, 3), 4.0, np.float32), "b": np.full(3, 4.0, np.float32)}, n=30),
        _reply(3, {"w": np.full((2, 3), np.inf, np.float32), "b": np.zeros(3, np.float32)}, n=50),
    ]
    arrays, _ = strategy.aggregate_train(1, replies)
    delta = 3.25  # the weighted mean of the two finite updates, minus the global weights (0)
    m, v = 0.1 * delta, 0.01 * delta**2  # (1 - beta_1)·Δ, (1 - beta_2)·Δ²
    eta = 0.01 * np.sqrt(1 - 0.99**2) / (1 - 0.9**2)  # bias-corrected server learning rate at round 1
    np.testing.assert_allclose(arrays["w"].numpy(), np.full((2, 3), eta * m / (np.sqrt(v) + 1e-3)), rtol=1e-5)


def test_fedadam_resumed_with_its_saved_moments_continues_exactly():
    def adam(round_offset: int = 0):
        strategy = make_strategy(FederatedConfig(strategy="fedadam", server_lr=0.05, min_train_nodes=1))
        strategy.expected = {k: (v.shape, str(v.dtype)) for k, v in GLOBAL.items()}
        strategy.round_offset = round_offset
        return strategy

    def step(strategy, server_round: int, start: dict, value: float) -> dict:
        strategy.current_arrays = {k: v.copy() for k, v in start.items()}  # what configure_train records
        replies = [_reply(1, {k: np.full_like(v, value) for k, v in GLOBAL.items()}, n=10),
                   _reply(2, {k: np.full_like(v, value / 2) for k, v in GLOBAL.items()}, n=20)]  # fmt: skip
        arrays, _ = strategy.aggregate_train(server_round, replies)
        return {k: arrays[k].numpy() for k in GLOBAL}

    straight = adam()
    after_1 = step(straight, 1, GLOBAL, 3.0)
    after_2 = step(straight, 2, after_1, 1.0)

    interrupted = adam()
    resumed_from = step(interrupted, 1, GLOBAL, 3.0)
    saved = optimizer_state(interrupted)
    assert sorted(saved) == ["m_t/b", "m_t/w", "v_t/b", "v_t/w"]
    resumed = adam(round_offset=1)  # a new ServerApp: Flower counts this round as 1, the run as 2
    restore_optimizer_state(resumed, saved)
    continued = step(resumed, 1, resumed_from, 1.0)
    for k in GLOBAL:
        np.testing.assert_array_equal(continued[k], after_2[k])
    fresh = adam(round_offset=1)  # without the moments the step differs: the saved state is what makes it exact
    assert not np.allclose(step(fresh, 1, resumed_from, 1.0)["w"], after_2["w"])
    assert optimizer_state(make_strategy(FederatedConfig(strategy="fedavg"))) == {}


def test_client_errors_are_shortened_to_one_line():
    from radcnn.federated.strategy import short_reason

    ray = (
        "<class 'ray.exceptions.RayTaskError(ClientAppException)'>:<'ray::ClientAppActor.run() (pid=1)\n  File x\n"
        "flwr.clientapp.client_app.ClientAppException: \nException ClientAppException occurred. Message: client 1 "
        "(site_b) has no training images with known labels for nodule'>"
    )
    assert short_reason(ray) == "client 1 (site_b) has no training images with known labels for nodule"
    died = "<class 'ray.exceptions.ActorDiedError'>:<'The actor died unexpectedly.\n\tclass_name: ClientAppActor'>"
    assert short_reason(died) == "ActorDiedError: The actor died unexpectedly."
    assert short_reason("node unavailable") == "node unavailable"


def test_clients_that_never_replied_are_counted_and_logged(caplog):
    strategy = _strategy()
    strategy.sent = 3  # three training messages went out; one client vanished without a reply
    replies = [_reply(k, {"w": np.ones((2, 3), np.float32), "b": np.ones(3, np.float32)}) for k in (1, 2)]
    with caplog.at_level(logging.WARNING, logger="radcnn.federated.strategy"):
        strategy.aggregate_train(1, replies)
    assert "1 of 3 sampled clients sent no reply" in caplog.text
    entry = strategy.round_log[1]
    assert (entry["sampled"], entry["replies"], entry["accepted"]) == (3, 2, 2)


def test_evaluation_is_aggregated_when_a_client_has_no_auc():
    # site 2's val split has one class: no AUC key. Flower's own aggregation would refuse the round's replies.
    def evaluation(node: int, metrics: dict) -> Message:
        metadata = Metadata(1, f"e{node}", node, 0, "request", "1", 0.0, 3600.0, MessageType.EVALUATE)
        content = RecordDict({"metrics": MetricRecord(metrics), "config": ConfigRecord({"client-name": f"s{node}"})})
        return Message(content=content, metadata=metadata)

    replies = [evaluation(1, {"num-examples": 30, "loss": 0.2, "auc": 0.9}),
               evaluation(2, {"num-examples": 10, "loss": 0.6})]  # fmt: skip
    result = _strategy().aggregate_evaluate(1, replies)
    assert result["loss"] == pytest.approx((30 * 0.2 + 10 * 0.6) / 40)  # 0.3
    assert result["auc"] == pytest.approx(0.9)  # only the client that has it
