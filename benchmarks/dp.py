"""Differential privacy benchmark: DP-SGD (Opacus) against non-private training of the same model on PneumoniaMNIST.

Both runs go through radcnn's own training (`radcnn.training.fit.fit`, a full run directory each) with the same
model, input size, epochs, seed and split: the dev file's official `train` part to train, its official `val` part
to select the epoch and to score (the only split we may optimise on; the dev `test` part is a carve-out of train
and is not used). The private run targets ε ≤ 8 at δ = 1/N with Poisson sampling and per-sample clipping; following
common DP-SGD practice (Tramèr & Boneh 2021; De et al. 2022) it uses larger batches (512) than
the non-private run, which keeps the seed recipe (Adam 1e-3, batch 32); both weight the loss by class
(`pos_weight`: the dev train part is 90% pneumonia, and clipped per-example gradients otherwise follow the majority).

    python benchmarks/dp.py --npz ../shared/data/pneumoniamnist_dev.npz [--epochs 5] [--epsilon 8] [--out r.json]

Prints one JSON object: dp_epsilon (spent, from Opacus's accountant), dp_delta, dp_auc, nondp_auc (ROC AUC on val
of each run's saved model, checked against scikit-learn), auc_gap, the settings of both runs, wall_seconds and the
load average (the machine is shared: compare the two runs' seconds with each other, not with other machines).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from radcnn.config import DataConfig, DPConfig, ModelConfig, RunConfig, TrainConfig
from radcnn.models.inference import predict_probabilities
from radcnn.runs import RunDir
from radcnn.training.fit import fit

DEFAULT_NPZ = Path("../shared/data/pneumoniamnist_dev.npz")


def val_auc(run_dir: Path, npz: Path) -> float:
    """ROC AUC on the official val split of the run's saved model, computed by scikit-learn."""
    model, _ = RunDir.open(run_dir).load_model()
    data = np.load(npz)
    images = data["val_images"].astype(np.float32)[:, None] / 255.0
    labels = data["val_labels"][:, 0]
    probs = predict_probabilities(model, images)[:, 0]
    return float(roc_auc_score(labels, probs))


def train(npz: Path, out: Path, train_config: TrainConfig, model: str, size: int) -> tuple[dict, float]:
    config = RunConfig(
        data=DataConfig(source=str(npz), image_size=(size, size)),
        model=ModelConfig(name=model),
        train=train_config,
    )
    start = time.perf_counter()
    result = fit(config, out, overwrite=True)
    seconds = time.perf_counter() - start
    auc = val_auc(result.run_dir, npz)
    run = RunDir.open(result.run_dir)
    # radcnn's own val AUC of the kept epoch, next to scikit-learn's on the raw npz (they should agree)
    return {
        "auc": auc,
        "radcnn_val_auc": result.best_val_auc,
        "best_epoch": result.best_epoch,
        "privacy": run.privacy(),
    }, seconds


def compare(
    npz: Path = DEFAULT_NPZ,
    *,
    model: str = "seed_cnn",
    size: int = 28,
    epochs: int = 5,
    epsilon: float = 8.0,
    dp_batch_size: int = 512,
    dp_lr: float = 1e-3,
    class_balance: str = "pos_weight",
    max_grad_norm: float = 1.0,
    seed: int = 0,
) -> dict:
    """Train the non-private and the DP-SGD run and return the comparison (the JSON object `main` prints); also
    used by benchmarks/federated.py for its dp_* keys."""
    a = argparse.Namespace(npz=Path(npz), model=model, size=size, epochs=epochs, epsilon=epsilon,
                           dp_batch_size=dp_batch_size, dp_lr=dp_lr, class_balance=class_balance,
                           max_grad_norm=max_grad_norm, seed=seed)  # fmt: skip
    wall = time.perf_counter()
    common = {
        "epochs": a.epochs,
        "seed": a.seed,
        "precision": "32",
        "progress_bar": False,
        "class_balance": a.class_balance,
    }
    plain = TrainConfig(**common)  # the seed recipe: Adam 1e-3, batch 32
    private = TrainConfig(
        **common,
        batch_size=a.dp_batch_size,
        lr=a.dp_lr,
        dp=DPConfig(epsilon=a.epsilon, max_grad_norm=a.max_grad_norm),
    )
    with tempfile.TemporaryDirectory(prefix="radcnn-dp-bench-") as tmp:
        nondp, nondp_s = train(a.npz, Path(tmp) / "nondp", plain, a.model, a.size)
        dp, dp_s = train(a.npz, Path(tmp) / "dp", private, a.model, a.size)
    privacy = dp.pop("privacy")
    nondp.pop("privacy")
    result = {
        "dataset": a.npz.name,
        "model": f"{a.model} at {a.size}×{a.size}",
        "epochs": a.epochs,
        "class_balance": a.class_balance,
        "dp_epsilon": round(privacy["epsilon_spent"], 4),
        "dp_epsilon_selected_epoch": privacy["selected_epoch_epsilon"],
        "dp_delta": privacy["delta"],
        "dp_target_epsilon": a.epsilon,
        "dp_noise_multiplier": privacy["noise_multiplier"],
        "dp_sample_rate": privacy["sample_rate"],
        "dp_max_grad_norm": privacy["max_grad_norm"],
        "dp_batch_size": a.dp_batch_size,
        "dp_lr": a.dp_lr,
        "dp_accountant": privacy["accountant"],
        "dp_model_changes": privacy["model_changes"],
        "dp_auc": round(dp["auc"], 4),
        "nondp_auc": round(nondp["auc"], 4),
        "auc_gap": round(nondp["auc"] - dp["auc"], 4),
        "dp_radcnn_val_auc": dp["radcnn_val_auc"],
        "nondp_radcnn_val_auc": nondp["radcnn_val_auc"],
        "dp_best_epoch": dp["best_epoch"],
        "nondp_best_epoch": nondp["best_epoch"],
        "dp_seconds": round(dp_s, 1),
        "nondp_seconds": round(nondp_s, 1),
        "dp_time_ratio": round(dp_s / nondp_s, 2),
        "wall_seconds": round(time.perf_counter() - wall, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npz", type=Path, default=DEFAULT_NPZ)
    parser.add_argument("--model", default="seed_cnn")
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--epsilon", type=float, default=8.0)
    parser.add_argument("--dp-batch-size", type=int, default=512)
    parser.add_argument("--dp-lr", type=float, default=1e-3)
    parser.add_argument("--class-balance", default="pos_weight", help="for both runs (none | pos_weight)")
    parser.add_argument("--max-grad-norm", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result = compare(
        args.npz, model=args.model, size=args.size, epochs=args.epochs, epsilon=args.epsilon,
        dp_batch_size=args.dp_batch_size, dp_lr=args.dp_lr, class_balance=args.class_balance,
        max_grad_norm=args.max_grad_norm, seed=args.seed,
    )  # fmt: skip
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
