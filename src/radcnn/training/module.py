"""`ClassifierModule`: wires a network, the masked BCE-with-logits loss and validation AUC for Lightning."""

from __future__ import annotations

import math

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from radcnn.errors import TrainingError


def masked_bce_with_logits(logits: torch.Tensor, targets: torch.Tensor, pos_weight=None) -> torch.Tensor:
    """Mean BCE over known labels only (NaN targets are unknown and contribute nothing)."""
    known = ~torch.isnan(targets)
    if not known.any():
        return logits.sum() * 0.0
    losses = F.binary_cross_entropy_with_logits(
        logits.float(), torch.nan_to_num(targets, nan=0.0), reduction="none", pos_weight=pos_weight
    )
    return losses[known].mean()


def mean_auc(targets: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean ROC-AUC over labels that have both classes among the known values (NaN if none has)."""
    from sklearn.metrics import roc_auc_score

    aucs = []
    for j in range(targets.shape[1]):
        known = ~np.isnan(targets[:, j])
        y = targets[known, j]
        if len(np.unique(y)) == 2:
            aucs.append(roc_auc_score(y, probabilities[known, j]))
    return float(np.mean(aucs)) if aucs else float("nan")


class ClassifierModule(L.LightningModule):
    def __init__(self, model: nn.Module, *, lr: float = 1e-3, channels_last: bool = False):
        super().__init__()
        self.model = model
        self.lr = lr
        self.channels_last = channels_last
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self._val_targets: list[torch.Tensor] = []
        self._val_probs: list[torch.Tensor] = []
        self._val_losses: list[float] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = masked_bce_with_logits(self(x), y)
        if not torch.isfinite(loss):
            raise TrainingError(
                f"loss became {loss.item()} at epoch {self.current_epoch + 1}, batch {batch_idx + 1}; "
                "the last good checkpoint is kept — lower the learning rate or check the input range"
            )
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        logits = self(x).float()
        self._val_losses.append(masked_bce_with_logits(logits, y).item() * len(y))
        self._val_targets.append(y.detach().cpu())
        self._val_probs.append(torch.sigmoid(logits).detach().cpu())

    def on_validation_epoch_end(self) -> None:
        targets = torch.cat(self._val_targets).numpy()
        probs = torch.cat(self._val_probs).numpy()
        loss = sum(self._val_losses) / max(len(targets), 1)
        auc = mean_auc(targets, probs)
        self._val_targets.clear()
        self._val_probs.clear()
        self._val_losses.clear()
        self.log("val_loss", loss, prog_bar=True)
        # A single-class validation split has no AUC; -inf keeps "higher is better" monitoring well defined.
        self.log("val_auc", auc if not math.isnan(auc) else float("-inf"), prog_bar=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.model.parameters(), lr=self.lr)
