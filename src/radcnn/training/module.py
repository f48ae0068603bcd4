"""`ClassifierModule`: wires a network, the masked loss, validation AUC and the optimiser.

The validation loss is the training loss (same function, same `pos_weight`), so the two curves in the report are
comparable; validation AUC comes from `radcnn.evaluation.auc`, the code evaluation reports with. A multi-class
task takes its labels as class indices (one column) or as one-hot columns; both train one softmax.
"""

from __future__ import annotations

import math

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from radcnn.errors import TrainingError
from radcnn.evaluation.auc import mean_auc, multiclass_auc
from radcnn.models.inference import logits_to_probabilities


def masked_bce_with_logits(logits: torch.Tensor, targets: torch.Tensor, pos_weight=None) -> torch.Tensor:
    """Mean BCE over known labels only (NaN targets are unknown and contribute nothing)."""
    known = ~torch.isnan(targets)
    if not known.any():
        return logits.sum() * 0.0
    losses = F.binary_cross_entropy_with_logits(
        logits.float(), torch.nan_to_num(targets, nan=0.0), reduction="none", pos_weight=pos_weight
    )
    return losses[known].mean()


def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy for class indices (N, 1) or one-hot targets (N, K); unknown rows contribute nothing."""
    if targets.shape[1] > 1:
        clean = torch.nan_to_num(targets)
        exactly_one = ~torch.isnan(targets).any(dim=1) & (clean.sum(dim=1) == 1)
        index = torch.where(exactly_one, clean.argmax(dim=1).float(), torch.full_like(clean[:, 0], float("nan")))
    else:
        index = targets[:, 0]
    known = ~torch.isnan(index)
    if not known.any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float()[known], index[known].long())


def positive_weights(labels: np.ndarray) -> torch.Tensor:
    """BCE `pos_weight` per label: negatives / positives among the known training labels (1 when undefined)."""
    weights = []
    for j in range(labels.shape[1]):
        y = labels[~np.isnan(labels[:, j]), j]
        n_pos, n_neg = float((y > 0.5).sum()), float((y <= 0.5).sum())
        weights.append(n_neg / n_pos if n_pos > 0 and n_neg > 0 else 1.0)
    return torch.tensor(weights, dtype=torch.float32)


class ClassifierModule(L.LightningModule):
    def __init__(
        self,
        model: nn.Module,
        *,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        channels_last: bool = False,
        pos_weight: torch.Tensor | None = None,
        lr_schedule: str = "none",
        max_epochs: int = 10,
        param_groups: list[dict] | None = None,
        task: str = "binary",
    ):
        super().__init__()
        self.model = model
        self.lr, self.weight_decay = lr, weight_decay
        self.lr_schedule, self.max_epochs = lr_schedule, max_epochs
        self.param_groups = param_groups
        self.task = task
        self.channels_last = channels_last
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.register_buffer("pos_weight", pos_weight if pos_weight is not None else torch.empty(0), persistent=False)
        self._val_targets: list[torch.Tensor] = []
        self._val_logits: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The training objective; validation reports the same function."""
        if self.task == "multiclass":
            return masked_cross_entropy(logits, targets)
        return masked_bce_with_logits(logits, targets, self.pos_weight if self.pos_weight.numel() else None)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self.loss(self(x), y)
        if not torch.isfinite(loss):
            raise TrainingError(
                f"loss became {loss.item()} at epoch {self.current_epoch + 1}, batch {batch_idx + 1}; "
                "the last good checkpoint is kept — lower the learning rate or check the input range"
            )
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        self._val_targets.append(y.detach())
        self._val_logits.append(self(x).float().detach())

    def on_validation_epoch_end(self) -> None:
        targets, logits = torch.cat(self._val_targets), torch.cat(self._val_logits)
        self._val_targets.clear()
        self._val_logits.clear()
        if self.trainer.world_size > 1:
            # Each process saw a shard of the validation set; loss and AUC need all of it.
            targets = self.all_gather(targets).reshape(-1, targets.shape[-1])
            logits = self.all_gather(logits).reshape(-1, logits.shape[-1])
        loss = float(self.loss(logits, targets))
        probs = logits_to_probabilities(logits, self.task).cpu().numpy()
        labels = targets.cpu().numpy()
        auc = multiclass_auc(labels, probs) if self.task == "multiclass" else mean_auc(labels, probs)
        self.log("val_loss", loss, prog_bar=True)
        # A single-class validation split has no AUC; -inf keeps "higher is better" monitoring well defined.
        self.log("val_auc", auc if not math.isnan(auc) else float("-inf"), prog_bar=True)

    def make_optimizer(self) -> torch.optim.Optimizer:
        """The configured Adam (DP-SGD wraps this one in Opacus's DPOptimizer, see radcnn.training.dp_fit)."""
        params = self.param_groups or [{"params": [p for p in self.model.parameters() if p.requires_grad]}]
        # The fused kernel updates all parameters in one pass instead of a dozen elementwise passes; with the
        # seed CNN's 44M-parameter dense layer at 224×224 that is a large share of a CPU training step.
        fused = all(p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for p in self.model.parameters())
        return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay, fused=fused or None)

    def configure_optimizers(self):
        # `private_optimizer`: set by DP-SGD training to the DPOptimizer wrapping `make_optimizer()`'s Adam.
        optimizer = getattr(self, "private_optimizer", None) or self.make_optimizer()
        if self.lr_schedule == "cosine":
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.max_epochs)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
        if self.lr_schedule == "plateau":
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.3, patience=2)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "val_auc"}}
        return optimizer
