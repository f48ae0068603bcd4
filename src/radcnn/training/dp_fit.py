"""DP-SGD inside radcnn's Lightning training: the Opacus-wrapped optimizer and Poisson-sampled loader are the ones
the Trainer uses, and the run records what privacy it spent.

How Opacus and Lightning meet (Opacus's own Lightning example makes the engine inside `configure_optimizers`;
here the wrapping happens once, before `Trainer.fit`, so that the same `radcnn.training.dp.make_private` serves
centralised training and each federated client):

- the model is made Opacus-compatible with `fix_model` (BatchNorm → GroupNorm) before the LightningModule is built;
  the ModelSpec records ``model_kwargs["norm"] = "group"`` so that evaluate/predict/serve rebuild that architecture;
- `make_private` wraps the module's own Adam and the data module's training loader; Opacus's per-sample gradient
  hooks sit on the model's layers, so the LightningModule keeps training (and saving) the plain model while the
  hooks record per-sample gradients; the DPOptimizer clips, adds noise and steps Adam;
- `PrivacyAccounting` logs ε after every epoch (``dp_epsilon`` in logs/metrics.csv) and writes privacy.json.

Things DP-SGD rules out are refused up front (`check_dp_config`): gradient accumulation and DDP (Opacus needs its
own DistributedDPOptimizer/virtual steps), a class-balancing sampler (Poisson sampling replaces the sampler),
explicit bf16 (per-sample gradients are computed in fp32) and resuming (the accountant's history is not
checkpointed, so a resumed run could not state its ε).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import Any

import lightning as L
import torch

from radcnn.config import RunConfig
from radcnn.errors import ConfigError, ModelError
from radcnn.io import write_json_atomic
from radcnn.models.spec import ModelSpec
from radcnn.runs import BEST, PRIVACY
from radcnn.training.dp import PrivateTraining, fix_model, make_private, steps_taken

log = logging.getLogger(__name__)


def check_dp_config(config: RunConfig, *, resume: bool = False) -> None:
    """Refuse settings that DP-SGD cannot honour, naming the key and why."""
    train = config.train
    if not train.dp.enabled:
        return
    problems = []
    if train.accumulate_grad_batches != 1:
        problems.append("train.accumulate_grad_batches must be 1 (Opacus clips per step)")
    if train.devices != 1:
        problems.append("train.devices must be 1 (distributed DP-SGD is not supported)")
    if train.class_balance == "sampler":
        problems.append("train.class_balance 'sampler' conflicts with Poisson sampling; use 'pos_weight' or 'none'")
    if train.precision == "bf16":
        problems.append("train.precision must be 'auto' or '32' (per-sample gradients are computed in fp32)")
    if resume:
        problems.append("a DP run cannot be resumed: the privacy accountant's history is not checkpointed")
    if problems:
        raise ConfigError("differential privacy (train.dp.epsilon > 0): " + "; ".join(problems))


def fix_for_dp(model: torch.nn.Module, spec: ModelSpec) -> tuple[torch.nn.Module, ModelSpec, list[str]]:
    """Opacus's fixes applied to `model`, the spec that rebuilds the fixed architecture, and the changes made."""
    from radcnn.models.checkpoint import build_from_spec

    fixed, changes = fix_model(model)
    for change in changes:
        log.info("DP-SGD model change: %s", change)
    if not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return fixed, spec, changes  # no normalisation replaced: the registered architecture rebuilds it as it is
    spec = replace(spec, model_kwargs={**spec.model_kwargs, "norm": "group"})
    rebuilt = build_from_spec(spec).state_dict()
    own = fixed.state_dict()
    if set(rebuilt) != set(own) or any(rebuilt[k].shape != own[k].shape for k in own):
        raise ModelError(
            f"{spec.architecture}: Opacus's fix changed more than BatchNorm → GroupNorm ({'; '.join(changes)}); "
            "the saved model could not be rebuilt for evaluation"
        )
    return fixed, spec, changes


class PrivacyAccounting(L.Callback):
    """After every training epoch: ε spent so far (logged as ``dp_epsilon``) and privacy.json in the run."""

    def __init__(self, private: PrivateTraining, record: dict[str, Any], run_dir: Path):
        self.private = private
        self.record = record
        self.run_dir = Path(run_dir)
        self.per_epoch: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epsilon = self.private.epsilon()
        epoch = trainer.current_epoch + 1
        self.per_epoch.append({"epoch": epoch, "epsilon": epsilon, "steps": steps_taken(self.private.engine)})
        pl_module.log("dp_epsilon", epsilon, on_step=False, on_epoch=True)
        log.info("epoch %d: ε spent = %.4f (δ = %.3g)", epoch, epsilon, self.private.delta)
        self.write()

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.write()

    def write(self) -> dict[str, Any]:
        best_file = self.run_dir / BEST
        best_epoch = None
        if best_file.is_file():
            best_epoch = json.loads(best_file.read_text(encoding="utf-8")).get("epoch")
        spent = self.per_epoch[-1]["epsilon"] if self.per_epoch else 0.0
        selected = next((e["epsilon"] for e in self.per_epoch if e["epoch"] == best_epoch), None)
        record = {
            **self.record,
            "epsilon_per_epoch": list(self.per_epoch),
            "epsilon_spent": spent,
            "epochs_run": len(self.per_epoch),
            "selected_epoch": best_epoch,
            # The saved model only depends on the epochs up to the selected one (the rest of the run is
            # discarded except checkpoints/last.ckpt, which has spent the full ε).
            "selected_epoch_epsilon": selected,
        }
        write_json_atomic(self.run_dir / PRIVACY, record)
        return record


def attach_privacy(
    config: RunConfig, module: Any, datamodule: Any, run_dir: Path, model_changes: list[str]
) -> PrivacyAccounting:
    """Wrap `module`'s optimizer and `datamodule`'s training loader with Opacus for the configured (ε, δ) over
    ``train.epochs``; returns the callback that accounts ε per epoch (pass it to the Trainer)."""
    dp = config.train.dp
    loader = datamodule.train_dataloader()
    private = make_private(module.model, module.make_optimizer(), loader, dp, config.train.epochs)
    module.private_optimizer = private.optimizer
    # The Trainer asks the data module for its training loader: hand it the Poisson-sampled one.
    datamodule.train_dataloader = lambda: private.loader
    record = {
        "mechanism": "DP-SGD (Opacus)",
        "opacus_version": metadata.version("opacus"),
        "target_epsilon": dp.epsilon,
        "delta": private.delta,
        "delta_rule": "1/N of the training set" if dp.delta is None else "configured",
        "n_train": len(loader.dataset),
        "poisson_sampling": dp.poisson_sampling,
        "expected_batch_size": config.train.batch_size,
        "batches_per_epoch": len(loader),
        "epochs_planned": config.train.epochs,
        **private.settings(),
        "model_changes": list(model_changes),
        "secure_rng": False,
    }
    return PrivacyAccounting(private, record, run_dir)
