"""Callbacks: export the best model (by validation AUC) as a real, self-describing copy."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import lightning as L

from radcnn.io import write_json_atomic
from radcnn.models.checkpoint import save_model
from radcnn.models.spec import ModelSpec

log = logging.getLogger(__name__)

BEST_MODEL = "best_model.safetensors"


class BestModelExport(L.Callback):
    """After each validation, write `best_model.safetensors` when validation AUC improves.

    The file holds detached copies of the weights (never a reference to the live, still-training module) and the
    ModelSpec, written atomically; `best.json` records the epoch and score.
    """

    def __init__(self, run_dir: Path, spec: ModelSpec, monitor: str = "val_auc"):
        self.run_dir = Path(run_dir)
        self.spec = spec
        self.monitor = monitor
        self.best_score = -math.inf
        self.best_epoch: int | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        score = float(value)
        # The first epoch is always kept so that a run always has a best model, even with an undefined AUC.
        if self.best_epoch is None or score > self.best_score:
            self.best_score, self.best_epoch = score, trainer.current_epoch + 1
            save_model(pl_module.model, self.spec, self.run_dir / BEST_MODEL)
            write_json_atomic(
                self.run_dir / "best.json",
                {"epoch": self.best_epoch, self.monitor: score if math.isfinite(score) else None},
            )
            log.info("epoch %d: new best %s = %.4f", self.best_epoch, self.monitor, score)

    def state_dict(self) -> dict:
        return {"best_score": self.best_score, "best_epoch": self.best_epoch}

    def load_state_dict(self, state_dict: dict) -> None:
        self.best_score = state_dict["best_score"]
        self.best_epoch = state_dict["best_epoch"]


def read_best(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "best.json").read_text())


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
