"""Callbacks: export the best model (by validation AUC) as a real, self-describing copy; one resumable checkpoint
per epoch; a progress bar that counts epochs the way the logs and people do (from 1)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar

from radcnn.io import write_json_atomic
from radcnn.models.checkpoint import save_model
from radcnn.models.spec import ModelSpec
from radcnn.runs import BEST, BEST_MODEL

log = logging.getLogger(__name__)


class BestModelExport(L.Callback):
    """Write `best_model.safetensors`: with ``selection="best_val"`` after each validation that improves validation
    AUC; with ``selection="last"`` (a fixed schedule) once, when training ends — the final weights, or the averaged
    ones when a weight-averaging callback listed before this one has copied them in.

    The file holds detached copies of the weights (never a reference to the live, still-training module) and the
    ModelSpec, written atomically; `best.json` records the epoch, the score and how the model was selected.
    """

    def __init__(self, run_dir: Path, spec: ModelSpec, monitor: str = "val_auc", selection: str = "best_val"):
        if selection not in ("best_val", "last"):
            raise ValueError(f"selection must be 'best_val' or 'last', got {selection!r}")
        self.run_dir = Path(run_dir)
        self.spec = spec
        self.monitor = monitor
        self.selection = selection
        self.best_score = -math.inf
        self.best_epoch: int | None = None

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.selection != "last" or not trainer.is_global_zero:
            return
        value = trainer.callback_metrics.get(self.monitor)
        score = float(value) if value is not None else math.nan
        self.best_score, self.best_epoch = score, trainer.current_epoch
        self._save(pl_module, score)
        log.info("epoch %d: final model kept (fixed schedule), %s = %.4f", self.best_epoch, self.monitor, score)

    def _save(self, pl_module: L.LightningModule, score: float) -> None:
        save_model(pl_module.model, self.spec, self.run_dir / BEST_MODEL)
        write_json_atomic(
            self.run_dir / BEST,
            {
                "epoch": self.best_epoch,
                self.monitor: score if math.isfinite(score) else None,
                "selection": self.selection,
            },
        )

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero or self.selection != "best_val":
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        score = float(value)
        # The first epoch is always kept so that a run always has a best model, even with an undefined AUC.
        if self.best_epoch is None or score > self.best_score:
            self.best_score, self.best_epoch = score, trainer.current_epoch + 1
            self._save(pl_module, score)
            log.info("epoch %d: new best %s = %.4f", self.best_epoch, self.monitor, score)

    def state_dict(self) -> dict:
        return {"best_score": self.best_score, "best_epoch": self.best_epoch}

    def load_state_dict(self, state_dict: dict) -> None:
        self.best_score = state_dict["best_score"]
        self.best_epoch = state_dict["best_epoch"]


class EpochCheckpoint(L.Callback):
    """Write `checkpoints/last.ckpt` after every epoch's validation, through the Trainer's (atomic) checkpoint IO.

    Lightning's ModelCheckpoint writes `last.ckpt` only alongside a top-k checkpoint; radcnn wants exactly one
    resumable file per run, replaced atomically each epoch, so that a killed run continues from its last epoch.
    """

    def __init__(self, path: Path):
        self.path = Path(path)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        trainer.save_checkpoint(self.path)


class EpochProgressBar(RichProgressBar):
    """Lightning's bar says "Epoch 9/9" during the tenth of ten epochs (it counts from 0) while the logs, best.json
    and the report say epoch 10; this one says "Epoch 10/10"."""

    def _get_train_description(self, current_epoch: int) -> str:  # Lightning's hook for the bar's label
        total = self.trainer.max_epochs
        description = f"Epoch {current_epoch + 1}" + (f"/{total}" if total is not None and total > 0 else "")
        if len(self.validation_description) > len(description):
            description = f"{description:{len(self.validation_description)}}"
        return description
