"""The task module of Flower's three-part split: everything a client or the server does with a model, through
radcnn's own code — data (`radcnn.data.prepare`), model spec and builders (`radcnn.models`), the training module
(`radcnn.training`: the same masked loss, optimiser and Lightning trainer as `radcnn train`) and the metrics
(`radcnn.evaluation`). The Flower handlers in client_app.py / server_app.py only unpack, call this and pack.

Weights travel as a name → numpy array mapping (the model's full state dict, buffers included), so a mismatch is
reported by tensor name (`set_weights`), not as a silent positional mix-up.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from radcnn.config import RunConfig, config_from_dict, dump_config, load_config
from radcnn.data.loaders import ArraySplit, make_loader
from radcnn.data.prepare import PreparedData, prepare_data
from radcnn.errors import ConfigError, DataError, ModelError
from radcnn.evaluation.auc import mean_auc, multiclass_auc
from radcnn.evaluation.metrics import multilabel_metrics
from radcnn.federated.config import FederatedConfig
from radcnn.federated.partition import Partitioning, partition_rows
from radcnn.models.checkpoint import build_from_spec, load_state_strict
from radcnn.models.inference import predict_probabilities
from radcnn.models.spec import ModelSpec
from radcnn.training.fit import resolve_task
from radcnn.training.module import ClassifierModule
from radcnn.training.precision import resolve_precision
from radcnn.training.trainer import build_module

log = logging.getLogger(__name__)


# ----- configuration and data
def load_run_config(fed: FederatedConfig) -> RunConfig:
    """The radcnn config named by `fed.config` (defaults when empty), with `fed.data_source` applied."""
    config = load_config(fed.config) if fed.config else RunConfig()
    if fed.data_source:
        config = replace(config, data=replace(config.data, source=fed.data_source))
    if not config.data.source:
        raise ConfigError("a federated run needs data: set data.source in the radcnn config or data-source")
    return config


def config_text(config: RunConfig) -> str:
    return dump_config(config)


def config_from_text(text: str) -> RunConfig:
    return config_from_dict(yaml.safe_load(text) or {}, where="radcnn config sent by the server")


def model_spec(config: RunConfig, data: PreparedData) -> ModelSpec:
    """The global model's spec, as `radcnn train` would make it for these data."""
    task, output_names = resolve_task(config.train.task, data.splits["train"].labels, data.label_names)
    return ModelSpec(
        architecture=config.model.name,
        input_size=tuple(config.data.image_size),
        label_names=output_names,
        window=config.data.window,
        task=task,
    )


def partitions_of(data: PreparedData, fed: FederatedConfig, num_partitions: int, seed: int) -> Partitioning:
    table = data.manifest.table
    return partition_rows(
        table,
        data.manifest.labels(),
        scheme=fed.partition,
        num_partitions=fed.num_partitions or num_partitions,
        column=fed.partition_column,
        alpha=fed.alpha,
        seed=seed,
    )


def server_partitions(data: PreparedData, fed: FederatedConfig, seed: int) -> Partitioning:
    """The partition as the server sees it: by site, as many clients as the data have sites; otherwise
    num-partitions, or min-available-nodes when that is 0."""
    count = fed.num_partitions or (0 if fed.partition == "site" else fed.min_available_nodes)
    return partitions_of(data, fed, count, seed)


@dataclass
class ClientData:
    name: str
    train: ArraySplit
    val: ArraySplit
    spec: ModelSpec
    config: RunConfig


# Decoding and leakage-checking the data on every message would dominate a round; one client process keeps the
# last few datasets it prepared, keyed by everything they depend on (so no stale data can be served).
_DATA_CACHE: OrderedDict[tuple, ClientData] = OrderedDict()
_DATA_CACHE_SIZE = 4


def client_data(
    config: RunConfig, fed: FederatedConfig, partition_id: int, num_partitions: int, *, own_source: str = ""
) -> ClientData:
    """This client's train and val rows: its partition of the shared source, or all of `own_source` (a site's
    own data, given as the SuperNode's node config ``data-source``)."""
    key = (dump_config(config), fed, partition_id, num_partitions, own_source)
    if key in _DATA_CACHE:
        _DATA_CACHE.move_to_end(key)
        return _DATA_CACHE[key]
    seed = config.train.seed if fed.seed < 0 else fed.seed
    if own_source:
        config = replace(config, data=replace(config.data, source=own_source))
    data = prepare_data(config.data, seed=config.train.seed)
    spec = model_spec(config, data)
    if own_source:
        name, train, val = Path(own_source).name, data.splits["train"], data.splits["val"]
    else:
        parts = partitions_of(data, fed, num_partitions, seed)
        if not 0 <= partition_id < len(parts.names):
            raise ConfigError(f"partition-id {partition_id} is outside 0..{len(parts.names) - 1} ({fed.partition})")
        mine = parts.assignment == partition_id
        name = parts.names[partition_id]
        splits = data.partitions
        train = subset(data, np.flatnonzero(mine & (splits == "train")))
        val = subset(data, np.flatnonzero(mine & (splits == "val")))
    known = ~np.isnan(train.labels)
    if len(train) == 0 or not known.any():
        raise DataError(
            f"client {partition_id} ({name}) has no training images with known labels for "
            f"{', '.join(data.label_names)}; expected at least one labelled image in its train split "
            f"({len(train)} images)"
        )
    result = ClientData(name, train, val, spec, config)
    _DATA_CACHE[key] = result
    while len(_DATA_CACHE) > _DATA_CACHE_SIZE:
        _DATA_CACHE.popitem(last=False)
    return result


def subset(data: PreparedData, rows: np.ndarray) -> ArraySplit:
    """Rows of the whole prepared table (manifest order) as an in-memory split."""
    splits = data.partitions
    images, labels, tables = [], [], []
    for name, split in data.splits.items():
        local = np.flatnonzero(np.isin(np.flatnonzero(splits == name), rows))
        if local.size:
            images.append(np.asarray(split.images[local], dtype=np.float32))
            labels.append(split.labels[local])
            tables.append(split.table.iloc[local])
    if not images:
        empty = np.zeros((0, *data.splits["train"].images.shape[1:]), dtype=np.float32)
        labels_empty = np.zeros((0, len(data.label_names)), dtype=np.float32)
        return ArraySplit(empty, labels_empty, data.splits["train"].table.iloc[0:0])
    table = pd.concat(tables, ignore_index=True)
    return ArraySplit(np.concatenate(images), np.concatenate(labels), table)


def check_spec(server: ModelSpec, local: ModelSpec, *, where: str) -> None:
    """Refuse to train when the server's model and the one this client's data/config make differ."""
    fields = ("architecture", "input_size", "label_names", "task", "in_channels")
    differs = [f"{f}: server {getattr(server, f)!r}, {where} {getattr(local, f)!r}" for f in fields
               if getattr(server, f) != getattr(local, f)]  # fmt: skip
    if differs:
        raise ModelError(f"the server's model and {where}'s disagree — " + "; ".join(differs))


# ----- weights
def get_weights(model: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def set_weights(model: torch.nn.Module, arrays: dict[str, np.ndarray], *, source: str) -> None:
    """Load named arrays strictly; a missing, extra or wrongly shaped tensor is a ModelError naming it."""
    state = {k: torch.from_numpy(np.array(v, copy=True)) for k, v in arrays.items()}
    own = model.state_dict()
    for k, v in state.items():
        if k in own and v.shape == own[k].shape:
            state[k] = v.to(own[k].dtype)
    load_state_strict(model, state, source=source)


def new_model(spec: ModelSpec, seed: int) -> torch.nn.Module:
    """The initial global model, seeded inside a forked RNG (library code leaves global RNG state alone)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_from_spec(spec)


# ----- local training and evaluation
class ProximalModule(ClassifierModule):
    """`ClassifierModule` whose training loss adds FedProx's (mu/2)·||w - w_global||² (Li et al. 2020,
    arXiv:1812.06127) over the trainable parameters; mu = 0 is exactly the plain module (FedAvg)."""

    def __init__(self, *args, mu: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.mu = mu
        self._anchor = [p.detach().clone() for p in self.model.parameters()] if mu > 0 else []

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss = super().training_step(batch, batch_idx)
        if self.mu <= 0:
            return loss
        params = [p for p in self.model.parameters()]
        proximal = sum(((p - a.to(p.device)) ** 2).sum() for p, a in zip(params, self._anchor, strict=True))
        self.log("proximal_term", proximal.detach(), on_step=False, on_epoch=True, batch_size=len(batch[1]))
        return loss + 0.5 * self.mu * proximal


def local_train(
    model: torch.nn.Module,
    data: ClientData,
    fed: FederatedConfig,
    *,
    mu: float,
    seed: int,
    server_round: int = 1,
    callbacks: list | None = None,
) -> dict[str, float]:
    """Train `model` in place for fed.local_epochs on the client's train rows; returns train metrics.

    With dp-epsilon > 0 the round is DP-SGD (`radcnn.training.dp`, Opacus): an Opacus-compatible copy of the model
    (`fix_model`; its tensors are the model's) trains with the noise planned for the whole run
    (`radcnn.federated.privacy`), and `dp_epsilon` is the ε spent after `server_round` rounds.
    `callbacks`: extra Lightning callbacks (the baselines use one to select their epoch on val)."""
    import lightning as L

    config = data.config
    private = None
    trained = model
    if fed.dp_epsilon > 0:
        trained, _changes = _fix_for_dp(model)
    precision = "32-true" if fed.dp_epsilon > 0 else resolve_precision(config.train.precision)
    base = build_module(config, trained, data.train.labels, precision, task=data.spec.task)
    module = ProximalModule(
        base.model,
        lr=base.lr,
        weight_decay=base.weight_decay,
        channels_last=base.channels_last,
        pos_weight=base.pos_weight if base.pos_weight.numel() else None,
        lr_schedule="none",  # one round is a few local epochs; a schedule would restart every round
        max_epochs=fed.local_epochs,
        param_groups=base.param_groups,
        task=data.spec.task,
        mu=mu,
    )
    loader = make_loader(data.train, batch_size=config.train.batch_size, shuffle=True, seed=seed)
    trainer = L.Trainer(
        max_epochs=fed.local_epochs,
        accelerator="cpu" if not torch.cuda.is_available() else "auto",
        devices=1,
        precision=precision,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=callbacks or [],
    )
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        torch.manual_seed(seed)
        if fed.dp_epsilon > 0:
            # Opacus wraps the module's own optimiser and this loader (Poisson sampling); its per-sample gradient
            # hooks sit on the layers, so Lightning keeps training the plain module (as in radcnn.training.dp_fit).
            private = _make_private(module, loader, fed)
            loader = private.loader
            # Opacus's full backward hook on the first layer warns that it has no input gradient: expected.
            warnings.filterwarnings("ignore", message=".*Full backward hook is firing.*")
        # Batches come from an in-memory array; worker processes would only add start-up time.
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        # The server evaluates the global model; local training has no validation loop on purpose.
        warnings.filterwarnings("ignore", message=".*`validation_step` but have no `val_dataloader`.*")
        trainer.fit(module, train_dataloaders=loader)
    metrics = {"train_loss": float(trainer.callback_metrics.get("train_loss", float("nan")))}
    if "proximal_term" in trainer.callback_metrics:
        metrics["proximal_term"] = float(trainer.callback_metrics["proximal_term"])
    if private is not None:
        metrics.update(_privacy_metrics(private, fed, server_round))
        private.release()
        # the fixed copy has exactly the model's tensors (fix_model changes activations/forward, not weights)
        load_state_strict(model, trained.state_dict(), source="the DP-SGD training copy")
    return metrics


def _fix_for_dp(model: torch.nn.Module) -> tuple[torch.nn.Module, list[str]]:
    """An Opacus-compatible training copy of the global model. The server builds that model with GroupNorm
    already (spec norm "group"), so a BatchNorm here means server and client disagree."""
    from radcnn.training.dp import fix_model  # noqa: PLC0415 (optional: DP-SGD with Opacus)

    if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        raise ModelError(
            "dp-epsilon > 0 but the server's model has BatchNorm layers; a DP run's global model must be built with "
            "GroupNorm (ModelSpec model_kwargs norm 'group') on the server and every client"
        )
    return fix_model(model)


def _make_private(module: ClassifierModule, loader, fed: FederatedConfig):
    from radcnn.federated.privacy import dp_config  # noqa: PLC0415 (optional: needs opacus)
    from radcnn.training.dp import make_private  # noqa: PLC0415

    # σ planned for every step of the run (rounds × local epochs), not for this round alone: see privacy.py.
    private = make_private(
        module.model, module.make_optimizer(), loader, dp_config(fed), epochs=fed.local_epochs * fed.num_server_rounds
    )
    module.private_optimizer = private.optimizer
    return private


def _privacy_metrics(private, fed: FederatedConfig, server_round: int) -> dict[str, float]:
    """ε after `server_round` rounds of this client's planned steps, by the accountant make_private uses."""
    from radcnn.training.dp import epsilon_after, steps_taken  # noqa: PLC0415

    steps_per_round = fed.local_epochs * len(private.loader)
    epsilon = epsilon_after(private.noise_multiplier, private.sample_rate, server_round * steps_per_round,
                            private.delta)  # fmt: skip
    return {
        "dp_epsilon": epsilon,
        "dp_round_epsilon": private.epsilon(),  # this round's steps alone (the fresh engine's accountant)
        "dp_noise_multiplier": private.noise_multiplier,
        "dp_sample_rate": private.sample_rate,
        "dp_delta": private.delta,
        "dp_steps": float(steps_taken(private.engine)),
    }


def evaluate_model(model: torch.nn.Module, split: ArraySplit, spec: ModelSpec) -> dict[str, float]:
    """Loss, mean AUC and accuracy-type metrics of `model` on `split` (radcnn.evaluation's definitions)."""
    if len(split) == 0:
        raise DataError("nothing to evaluate on: the split is empty")
    probs = predict_probabilities(model, split.images, task=spec.task)
    labels = split.labels
    eps = 1e-7
    if spec.task == "multiclass":
        auc = multiclass_auc(labels, probs)
        index = labels[:, 0] if labels.shape[1] == 1 else np.where(np.isnan(labels).any(1), np.nan, labels.argmax(1))
        known = ~np.isnan(index)
        loss = (
            float(-np.log(np.clip(probs[known, index[known].astype(int)], eps, 1)).mean()) if known.any() else math.nan
        )
        return {"loss": loss, "auc": auc, "n": float(len(split))}
    known = ~np.isnan(labels)
    p = np.clip(probs, eps, 1 - eps)
    losses = -(np.nan_to_num(labels) * np.log(p) + (1 - np.nan_to_num(labels)) * np.log(1 - p))
    loss = float(losses[known].mean()) if known.any() else math.nan
    out = {"loss": loss, "auc": mean_auc(labels, probs), "n": float(len(split))}
    per_label = multilabel_metrics(labels, probs, list(spec.label_names), list(spec.thresholds))
    for name in spec.label_names:
        out[f"auc_{name}"] = per_label[name]["roc_auc"]
    out["accuracy"] = per_label["macro"]["accuracy"]
    return out
