"""The ServerApp: parses the run config once, prepares the run directory and the server's held-out set, runs the
configured strategy, and after every round evaluates the global model on the held-out (val) split, checkpoints it
and appends the round to the run's history. Resumes from the last completed round.

A federated run directory is a normal radcnn run (config.yaml, split.csv, data_summary.json,
best_model.safetensors with val-chosen thresholds, best.json, logs/metrics.csv — one row per round) plus the
``federated/`` files named in `radcnn.runs`, so `radcnn evaluate`, `predict`, `report` and `serve` work on it.

`app` is what ``flwr run`` loads (``radcnn.federated.server_app:app``); `make_server_app(overrides)` is the same
app with settings given in Python (the simulation engine's `run_simulation` passes no run config).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import pandas as pd

from radcnn.config import RunConfig
from radcnn.data.prepare import PreparedData, prepare_data
from radcnn.errors import ConfigError
from radcnn.federated import privacy, task
from radcnn.federated.config import RECORD_CONFIG, RECORD_SPEC, FederatedConfig
from radcnn.federated.partition import partition_report
from radcnn.federated.strategy import make_strategy, optimizer_state, restore_optimizer_state
from radcnn.io import atomic_path
from radcnn.models.checkpoint import build_from_spec, load_model, save_model
from radcnn.runs import (
    BEST,
    BEST_MODEL,
    FEDERATED_HISTORY,
    FEDERATED_PARTITIONS,
    GLOBAL_MODEL,
    METRICS_LOG,
    PRIVACY,
    SERVER_OPTIMIZER,
    RunDir,
    check_destination,
    partial_dir,
    start_run,
)

log = logging.getLogger(__name__)


def make_server_app(overrides: dict[str, Any] | None = None):
    from flwr.serverapp import ServerApp

    app = ServerApp()

    @app.main()
    def main(grid, context) -> None:
        fed = FederatedConfig.from_mapping({**dict(context.run_config), **(overrides or {})})
        run_server(grid, fed)

    return app


def run_server(grid, fed: FederatedConfig) -> Path:
    """Run `fed.num_server_rounds` rounds (or the rest of them, on resume) and commit the run directory."""
    config = _config_for(fed)
    privacy.check_settings(fed, config)
    staging = start_run(fed.run_dir, overwrite=fed.overwrite, resume=fed.resume)
    run = staging.run
    try:
        data = prepare_data(config.data, seed=config.train.seed)
        seed = config.train.seed if fed.seed < 0 else fed.seed
        spec, dp = plan_privacy(fed, config, data, seed)
        if not fed.resume:
            from radcnn.data.prepare import data_key
            from radcnn.training.fit import write_data_record

            run.write_config(config)
            write_data_record(run, data, key=data_key(config.data))
            parts = task.server_partitions(data, fed, seed)
            report = partition_report(data.manifest.table, data.manifest.labels(), data.label_names, parts)
            run.write_json(FEDERATED_PARTITIONS, {"scheme": fed.partition, "clients": report})
        _rounds(grid, fed, config, data, spec, run, seed, dp)
        _finish(run, data, config)
    except BaseException as exc:
        kept = staging.discard_unless_resumable()
        log.error("federated run failed: %s%s", exc, f" (resumable: {staging.run.path})" if kept else "")
        raise
    staging.commit()
    log.info("federated run written to %s", fed.run_dir)
    return Path(fed.run_dir)


def _config_for(fed: FederatedConfig) -> RunConfig:
    if not fed.resume:
        return task.load_run_config(fed)
    check_destination(fed.run_dir, resume=True)
    recorded = RunDir(partial_dir(fed.run_dir)).config()
    if RunDir(partial_dir(fed.run_dir)).has(PRIVACY):
        raise ConfigError(
            f"{fed.run_dir} was trained with DP-SGD: it cannot be resumed, because the clients' privacy accounting "
            "would restart; start a new run"
        )
    if fed.config:
        given = task.load_run_config(fed)
        if given != recorded:
            raise ConfigError(
                f"cannot resume {fed.run_dir} with a different radcnn config; the run keeps the one it started with "
                "(leave config unset to resume)"
            )
    return recorded


def plan_privacy(fed: FederatedConfig, config: RunConfig, data: PreparedData, seed: int):
    """The global model's spec and, for a DP run, the clients' noise plans and the model changes.

    DP-SGD needs GroupNorm instead of BatchNorm; the server's global model is built that way from the start
    (spec ``model_kwargs["norm"] = "group"``, the rule `radcnn train --dp-epsilon` records), so the clients' fixed
    model and the server's have the same tensors, and `radcnn predict` rebuilds it. A target ε that some client
    cannot reach is a ConfigError here, before round 1."""
    spec = task.model_spec(config, data)
    if fed.dp_epsilon <= 0:
        return spec, None
    from radcnn.training.dp_fit import fix_for_dp

    _fixed, spec, changes = fix_for_dp(build_from_spec(spec), spec)
    parts = task.server_partitions(data, fed, seed)
    train = data.partitions == "train"
    sizes = {name: int(((parts.assignment == k) & train).sum()) for k, name in enumerate(parts.names)}
    plans = privacy.plan_clients(sizes, config.train.batch_size, fed)
    for plan in plans:
        log.info("DP-SGD plan for %s: %d images, noise multiplier %.4f, sampling rate %.4f, δ = %.3g, "
                 "ε after the last round %.3f (target %g)", plan.name, plan.n_train, plan.noise_multiplier,
                 plan.sample_rate, plan.delta, plan.epsilon_after_round(fed.num_server_rounds), fed.dp_epsilon)  # fmt: skip
    return spec, (plans, changes)


def check_privacy(fed: FederatedConfig) -> None:
    """`plan_privacy` before any process starts (the `simulate` pre-flight): unreachable targets and settings
    DP-SGD cannot honour are ConfigErrors here."""
    if fed.dp_epsilon <= 0:
        return
    config = _config_for(fed)
    privacy.check_settings(fed, config)
    data = prepare_data(config.data, seed=config.train.seed)
    plan_privacy(fed, config, data, config.train.seed if fed.seed < 0 else fed.seed)


def _rounds(
    grid, fed: FederatedConfig, config: RunConfig, data: PreparedData, spec, run: RunDir, seed: int, dp=None
) -> None:
    from flwr.app import ArrayRecord, ConfigRecord, MetricRecord

    history = run.read_json(FEDERATED_HISTORY) if fed.resume and run.has(FEDERATED_HISTORY) else {"rounds": []}
    done = max((r["round"] for r in history["rounds"]), default=0)
    model = task.new_model(spec, seed)
    if done:
        resumed, _ = load_model(run.file(GLOBAL_MODEL))
        task.set_weights(model, task.get_weights(resumed), source=str(run.file(GLOBAL_MODEL)))
        log.info("resuming %s after round %d of %d", fed.run_dir, done, fed.num_server_rounds)
    remaining = fed.num_server_rounds - done
    history.update({"strategy": fed.strategy, "planned_rounds": fed.num_server_rounds, "settings": fed.to_record()})
    if remaining <= 0:
        return
    strategy = make_strategy(fed)
    strategy.round_offset = done
    if done and fed.strategy == "fedadam":
        _restore_server_optimizer(run, strategy)
    best_auc = run.best().get("val_auc") if done else None
    started = time.monotonic()

    def evaluate(server_round: int, arrays) -> MetricRecord | None:
        nonlocal best_auc
        if server_round == 0:
            return None  # the initial model is random; round 1 is the first global model worth recording
        number = done + server_round
        task.set_weights(model, {k: v.numpy() for k, v in arrays.items()}, source=f"global model of round {number}")
        metrics = task.evaluate_model(model, data.splits["val"], spec)
        save_model(model, spec, run.file(GLOBAL_MODEL))
        _save_server_optimizer(run, strategy)
        auc = metrics["auc"]
        if not math.isnan(auc) and (best_auc is None or auc > best_auc):
            best_auc = auc
            save_model(model, spec, run.file(BEST_MODEL))
            run.write_json(BEST, {"epoch": number, "round": number, "val_auc": auc, "val_loss": metrics["loss"]})
        elif not run.has(BEST_MODEL):
            save_model(model, spec, run.file(BEST_MODEL))
            run.write_json(BEST, {"epoch": number, "round": number, "val_auc": None, "val_loss": metrics["loss"]})
        entry = {"round": number, "val": metrics, "seconds": round(time.monotonic() - started, 2)}
        entry.update(strategy.round_log.get(number, {}))
        if dp is not None:
            _record_privacy(fed, dp, entry, number)
        history["rounds"].append(entry)
        run.write_json(FEDERATED_HISTORY, history)
        if dp is not None:
            best = run.best().get("round")
            run.write_json(PRIVACY, privacy.privacy_record(fed, dp[0], config.train.batch_size, dp[1], history, best))
        _write_metrics_log(run, history)
        log.info("round %d: global val AUC %.4f, loss %.4f", number, auc, metrics["loss"])
        return MetricRecord({"val_auc": _finite(auc), "val_loss": _finite(metrics["loss"])})

    record = ConfigRecord({**fed.to_record(), RECORD_CONFIG: task.config_text(config), RECORD_SPEC: spec.to_json()})
    strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(model.state_dict()),
        num_rounds=remaining,
        timeout=fed.round_timeout,
        train_config=record,
        evaluate_config=ConfigRecord(dict(record)),
        evaluate_fn=evaluate,
    )


def _save_server_optimizer(run: RunDir, strategy) -> None:
    """FedAdam's moments beside the global model of the same round (nothing for FedAvg/FedProx)."""
    from safetensors.numpy import save  # noqa: PLC0415

    state = optimizer_state(strategy)
    if state:
        with atomic_path(run.file(SERVER_OPTIMIZER)) as tmp:
            tmp.write_bytes(save(state))


def _restore_server_optimizer(run: RunDir, strategy) -> None:
    from safetensors.numpy import load  # noqa: PLC0415

    if not run.has(SERVER_OPTIMIZER):
        log.warning("%s has no %s: FedAdam's moments restart from zero on resume", run.path, SERVER_OPTIMIZER)
        return
    restore_optimizer_state(strategy, load(run.read_bytes(SERVER_OPTIMIZER)))
    log.info("resumed FedAdam's server moments from %s", run.file(SERVER_OPTIMIZER))


def _record_privacy(fed: FederatedConfig, dp, entry: dict, number: int) -> None:
    """ε after this round: the largest any accepted client reports (each at its own δ), and the server's plan."""
    reported = [c["dp_epsilon"] for c in entry.get("clients", []) if "dp_epsilon" in c]
    planned = max(plan.epsilon_after_round(number) for plan in dp[0])
    entry["dp_epsilon"] = max(reported) if reported else planned
    entry["dp_epsilon_planned"] = planned
    log.info("round %d: DP-SGD ε spent so far %.4f (target %g)", number, entry["dp_epsilon"], fed.dp_epsilon)


def _finite(value: float) -> float:
    return float(value) if math.isfinite(value) else -1.0


def _write_metrics_log(run: RunDir, history: dict) -> None:
    """logs/metrics.csv in the shape `radcnn report` reads (one row per round, 0-based like Lightning epochs)."""
    rows = []
    for entry in history["rounds"]:
        train_losses = [c["train_loss"] for c in entry.get("clients", []) if "train_loss" in c]
        weights = [c.get("num-examples", 1.0) for c in entry.get("clients", []) if "train_loss" in c]
        train_loss = sum(w * x for w, x in zip(weights, train_losses, strict=True)) / sum(weights) if weights else None
        rows.append(
            {
                "epoch": entry["round"] - 1,
                "train_loss": train_loss,
                "val_loss": entry["val"]["loss"],
                "val_auc": entry["val"]["auc"],
            }  # fmt: skip
        )
    with atomic_path(run.file(METRICS_LOG)) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)


def _finish(run: RunDir, data: PreparedData, config: RunConfig) -> None:
    """Decision thresholds of the best global model, chosen on val exactly as `radcnn train` does."""
    from radcnn.training.fit import _choose_thresholds  # noqa: PLC2701 (the one threshold rule of radcnn)

    _choose_thresholds(run, data, config)


app = make_server_app()
