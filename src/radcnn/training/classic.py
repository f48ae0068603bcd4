"""Training a classic baseline (`radcnn.models.classic`): one fit on the training split, no Lightning loop.

It leaves the same run files a CNN run does — `best_model.safetensors` (with the ModelSpec), `best.json` and a
one-row `logs/metrics.csv` (epoch 0: training and validation log-loss and validation AUC) — so evaluate, report
and predict treat both alike.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import torch

from radcnn.data.prepare import PreparedData
from radcnn.evaluation.auc import mean_auc
from radcnn.io import atomic_path
from radcnn.models.checkpoint import save_model
from radcnn.models.inference import predict_probabilities
from radcnn.models.spec import ModelSpec
from radcnn.runs import BEST, BEST_MODEL, METRICS_LOG, RunDir

log = logging.getLogger(__name__)


def _log_loss(labels: np.ndarray, probs: np.ndarray) -> float:
    known = ~np.isnan(labels)
    if not known.any():
        return math.nan
    p = np.clip(probs[known], 1e-7, 1 - 1e-7)
    y = labels[known]
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def train_classic(model: torch.nn.Module, spec: ModelSpec, data: PreparedData, run: RunDir, *, seed: int) -> float:
    """Fit `model` on the training split, write the run's model, best.json and log; returns validation AUC."""
    if spec.task != "binary":
        from radcnn.errors import ConfigError

        raise ConfigError(f"{spec.architecture} supports binary (or multi-label) tasks, not {spec.task}")
    train, val = data.splits["train"], data.splits["val"]
    model.fit_arrays(np.asarray(train.images, dtype=np.float32), train.labels, seed=seed)
    p_train = predict_probabilities(model, train.images)
    p_val = predict_probabilities(model, val.images)
    auc = mean_auc(val.labels, p_val)
    save_model(model, spec, run.file(BEST_MODEL))
    finite = auc if not math.isnan(auc) else None
    run.write_json(BEST, {"epoch": 1, "val_auc": finite, "selection": "single fit"})
    row = {
        "epoch": 0,
        "step": 0,
        "train_loss": _log_loss(train.labels, p_train),
        "val_auc": auc,
        "val_loss": _log_loss(val.labels, p_val),
    }
    path = run.file(METRICS_LOG)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        pd.DataFrame([row]).to_csv(tmp, index=False)
    log.info("%s fitted: validation AUC %.4f", spec.architecture, auc)
    return auc
