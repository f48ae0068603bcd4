"""Building the Lightning `Trainer` and `ClassifierModule` from a `RunConfig` (no training happens here)."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from radcnn.config import RunConfig
from radcnn.models.spec import ModelSpec
from radcnn.runs import CHECKPOINT, LOGS
from radcnn.training.callbacks import BestModelExport, EpochCheckpoint, EpochProgressBar
from radcnn.training.checkpoint_io import AtomicCheckpointIO
from radcnn.training.module import ClassifierModule, positive_weights

log = logging.getLogger(__name__)


def build_module(
    config: RunConfig, model: torch.nn.Module, train_labels: np.ndarray, precision: str, *, task: str = "binary"
):
    """The LightningModule with the configured loss weighting, optimiser groups and schedule."""
    groups = None
    if config.model.freeze_backbone or config.model.backbone_lr_scale != 1.0:
        from radcnn.models.transfer import freeze_backbone, parameter_groups

        if config.model.freeze_backbone:
            freeze_backbone(model, config.model.name, frozen=True)
        if config.model.backbone_lr_scale != 1.0:
            groups = parameter_groups(model, config.model.name, config.train.lr, config.model.backbone_lr_scale)
    balance = config.train.class_balance == "pos_weight" and task == "binary"
    pos_weight = positive_weights(train_labels) if balance else None
    return ClassifierModule(
        model,
        lr=config.train.lr,
        weight_decay=config.train.weight_decay,
        channels_last=precision.startswith("bf16"),
        pos_weight=pos_weight,
        lr_schedule=config.train.lr_schedule,
        max_epochs=config.train.epochs,
        param_groups=groups,
        task=task,
    )


def build_trainer(
    config: RunConfig, work: Path, spec: ModelSpec, precision: str, extra_callbacks: tuple[L.Callback, ...] = ()
) -> L.Trainer:
    train = config.train
    callbacks: list[L.Callback] = [*extra_callbacks]
    if train.weight_averaging == "ema":
        # Lightning's callback (torch AveragedModel underneath): validation runs on the averaged weights, and they
        # replace the live ones when training ends — before BestModelExport, listed after it, saves them.
        from lightning.pytorch.callbacks import EMAWeightAveraging

        callbacks.append(EMAWeightAveraging(decay=train.ema_decay))
    callbacks.append(BestModelExport(work, spec, selection=train.model_selection))
    if train.checkpoint_every_epoch:
        callbacks.append(EpochCheckpoint(work / CHECKPOINT))
    if train.early_stopping_patience > 0:
        callbacks.append(EarlyStopping(monitor="val_auc", mode="max", patience=train.early_stopping_patience))
    if train.progress_bar:
        callbacks.append(EpochProgressBar())
    loggers: list = [CSVLogger(work, name=LOGS, version=""), TensorBoardLogger(work, name=LOGS, version="")]
    if importlib.util.find_spec("mlflow") is not None:
        from lightning.pytorch.loggers import MLFlowLogger

        loggers.append(MLFlowLogger(experiment_name="radcnn", tracking_uri=f"file:{work / 'mlruns'}"))
    distributed = train.devices > 1
    return L.Trainer(
        max_epochs=train.epochs,
        accelerator="cpu" if not torch.cuda.is_available() else "auto",
        devices=train.devices,
        # ddp_spawn starts the worker processes from a library call (no re-executed script); gloo on CPU.
        strategy="ddp_spawn" if distributed else "auto",
        precision=precision,
        deterministic=train.deterministic,
        logger=loggers,
        enable_checkpointing=False,  # radcnn's own callbacks write the best model and last.ckpt
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        accumulate_grad_batches=train.accumulate_grad_batches,
        enable_progress_bar=train.progress_bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
        use_distributed_sampler=distributed,
    )
