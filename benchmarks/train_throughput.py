"""Training throughput: radcnn's training path versus a plain eager fp32 PyTorch loop, measured in the same run.

Both sides train the same architecture on the same batches (224×224 by default). The eager loop is what a
hand-written notebook does: fp32, contiguous NCHW tensors, `torch.optim.Adam`. radcnn's path is the Lightning
Trainer that `radcnn train` builds (bf16 autocast + channels_last on CPUs with AMX/AVX-512-bf16, fused Adam).
The AUC cost of bf16 is measured by training the seed CNN twice on PneumoniaMNIST (fp32 vs bf16, same seed).

    python benchmarks/train_throughput.py [--models seed_cnn,densenet121] [--size 224] [--steps 12]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch

from radcnn.config import DataConfig, RunConfig, TrainConfig
from radcnn.data.loaders import ArraySplit, make_loader
from radcnn.models.registry import create_model
from radcnn.training.module import ClassifierModule
from radcnn.training.precision import cpu_has_native_bf16, resolve_precision

NPZ = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "pneumoniamnist_dev.npz"


def make_batches(n_images: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.random((n_images, 1, size, size), dtype=np.float32)
    labels = (rng.random((n_images, 1)) < 0.5).astype(np.float32)
    return images, labels


def eager_fp32(name: str, images, labels, batch: int, warmup: int, steps: int) -> float:
    """The baseline: a plain PyTorch training loop, fp32, NCHW, default Adam."""
    torch.manual_seed(0)
    model = create_model(name, input_size=images.shape[-2:]).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    start = None
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        i = (step * batch) % (len(images) - batch + 1)
        x, y = torch.from_numpy(images[i : i + batch]), torch.from_numpy(labels[i : i + batch])
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()
    return steps * batch / (time.perf_counter() - start)


class _StepTimer(L.Callback):
    def __init__(self, warmup: int):
        self.warmup, self.start, self.end, self.seen = warmup, None, None, 0

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if trainer.global_step == self.warmup and self.start is None:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if self.start is not None:
            self.seen += len(batch[1])
            self.end = time.perf_counter()


def radcnn_path(name: str, images, labels, batch: int, warmup: int, steps: int, precision: str) -> float:
    """radcnn's path: the same module and Trainer settings `radcnn train` uses, over the same batches."""
    torch.manual_seed(0)
    resolved = resolve_precision(precision)
    model = create_model(name, input_size=images.shape[-2:])
    module = ClassifierModule(model, lr=1e-3, channels_last=resolved.startswith("bf16"))
    split = ArraySplit(images, labels, pd.DataFrame({"i": range(len(labels))}))
    timer = _StepTimer(warmup)
    trainer = L.Trainer(
        max_steps=warmup + steps,
        accelerator="cpu",
        precision=resolved,
        logger=False,
        callbacks=[timer],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(module, train_dataloaders=make_loader(split, batch_size=batch, shuffle=False))
    return timer.seen / (timer.end - timer.start)


def bf16_auc_cost(epochs: int) -> dict:
    from radcnn.reporting.evaluate_run import evaluate_run
    from radcnn.training.fit import fit

    aucs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for precision in ("32", "bf16"):
            config = RunConfig(
                data=DataConfig(source=str(NPZ), image_size=(28, 28), label_columns=("pneumonia",)),
                train=TrainConfig(epochs=epochs, precision=precision, progress_bar=False),
            )
            fit(config, Path(tmp) / precision)
            metrics = evaluate_run(Path(tmp) / precision, n_boot=0).metrics
            aucs[precision] = metrics["labels"]["pneumonia"]["metrics"]["roc_auc"]
    return {"fp32_test_auc": aucs["32"], "bf16_test_auc": aucs["bf16"], "auc_cost": aucs["32"] - aucs["bf16"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="seed_cnn,densenet121")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--auc-epochs", type=int, default=6)
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    torch.set_num_threads(torch.get_num_threads())
    images, labels = make_batches(args.batch * 4, args.size, seed=0)
    results = {
        "machine": {
            "threads": torch.get_num_threads(),
            "native_bf16": cpu_has_native_bf16(),
            "torch": torch.__version__,
        },
        "size": args.size,
        "batch": args.batch,
        "models": {},
    }
    for name in args.models.split(","):
        steps = args.steps if name == "seed_cnn" else max(3, args.steps // 3)
        eager = eager_fp32(name, images, labels, args.batch, args.warmup, steps)
        ours = radcnn_path(name, images, labels, args.batch, args.warmup, steps, args.precision)
        results["models"][name] = {
            "eager_fp32_img_per_s": round(eager, 2),
            "radcnn_img_per_s": round(ours, 2),
            "speedup": round(ours / eager, 2),
            "radcnn_precision": resolve_precision(args.precision),
        }
    if args.auc_epochs > 0 and NPZ.is_file():
        results["bf16_auc_cost_pneumoniamnist_28"] = bf16_auc_cost(args.auc_epochs)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
