"""MedMNIST benchmark: train radcnn models on a MedMNIST 2-D .npz and score them next to the published MedMNIST v2 table.

Every model is trained by radcnn's own path (`radcnn.training.fit.fit`, decision threshold chosen on `val`) and
scored by `radcnn.reporting.evaluate_run.evaluate_run` (95% bootstrap CIs; in MedMNIST every image is its own patient).
A recipe trains one model per seed; the seeds' probabilities are averaged into an ensemble whose threshold is again
chosen on `val` only, and scored with `binary_metrics` / `metrics_with_ci`. The `test` part is never used to choose
anything — except that the *unlabelled* test probabilities feed the optional prior-shift correction (Saerens et al.
2002, EM), which is reported next to the headline threshold.

Members are trained in parallel worker processes with one intra-op thread each: on a small CPU, two single-threaded
trainings run about twice as fast as one two-threaded training, and they do not collapse when other processes
compete for the cores (OpenMP barriers spin-wait when a thread is descheduled).

    python benchmarks/medmnist.py --npz ../shared/data/pneumoniamnist_dev.npz [--models resnet18_ens] [--out r.json]
    python benchmarks/medmnist.py --npz ../shared/data/pneumoniamnist_dev.npz --quick

Prints one JSON object (and writes it to --out when given). Binary single-label MedMNIST files only
(PneumoniaMNIST, BreastMNIST); the published table is PneumoniaMNIST's.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

# MedMNIST v2 (Yang et al., Scientific Data 2023), Table: PneumoniaMNIST test AUC / ACC.
PUBLISHED = {
    "ResNet-18 (28)": {"auc": 0.944, "acc": 0.854, "open": True},
    "ResNet-50 (224)": {"auc": 0.962, "acc": 0.884, "open": True},
    "AutoKeras": {"auc": 0.947, "acc": 0.878, "open": True},
    "Google AutoML Vision": {"auc": 0.991, "acc": 0.946, "open": False},
}
BEST_OPEN = {k: max(v[k] for v in PUBLISHED.values() if v["open"]) for k in ("auc", "acc")}
REPORTED = ("roc_auc", "accuracy", "sensitivity", "specificity", "balanced_accuracy")


@dataclass(frozen=True)
class Recipe:
    """One training configuration; every seed gives one ensemble member."""

    model: str
    size: int
    epochs: int
    seeds: tuple[int, ...] = (0,)
    augment: str = "standard"
    class_balance: str = "sampler"
    lr: float = 1e-3
    batch_size: int = 64
    weight_decay: float = 0.0
    lr_schedule: str = "cosine"
    weight_averaging: str = "none"
    model_selection: str = "best_val"
    tta: str = "none"


# The default: built for cohort shift, not for val (docs/benchmarks.md explains each choice).
SHIFT = {"augment": "shift", "class_balance": "pos_weight", "weight_averaging": "ema", "model_selection": "last"}
RECIPES = {
    "resnet18_shift": Recipe("resnet18", size=28, epochs=15, tta="flip_shift", **SHIFT),
    "densenet121_shift": Recipe("densenet121", size=32, epochs=10, tta="flip_shift", **SHIFT),
    # The seed CNN exactly as described (Adam 1e-3, batch 32, 10 epochs, no augmentation), at 28 px.
    "seed_cnn": Recipe(
        "seed_cnn", size=28, epochs=10, augment="none", class_balance="none", batch_size=32, lr_schedule="none"
    ),
    "hog_logreg": Recipe("hog_logreg", size=28, epochs=1, augment="none", class_balance="none"),
    "lbp_hgb": Recipe("lbp_hgb", size=28, epochs=1, augment="none", class_balance="none"),
    # The previous default (val-selected ensemble): kept for comparison.
    "resnet18_ens": Recipe("resnet18", size=40, epochs=7, seeds=(0, 1, 2, 3)),
    "seed_cnn_ens": Recipe("seed_cnn", size=28, epochs=30, seeds=(0, 1, 2, 3)),
    "quick": Recipe("seed_cnn", size=28, epochs=2, seeds=(0, 1)),
}
DEFAULT_RECIPES = "resnet18_shift"
# `--models table`: the families of the benchmark table, cheapest first.
TABLE = "hog_logreg,lbp_hgb,seed_cnn,resnet18_shift,densenet121_shift"
# Registered models without a recipe get this one; DenseNet/EfficientNet need more than 28 pixels.
GENERIC = Recipe("", size=28, epochs=20)
MIN_SIZE = {"densenet121": 64, "efficientnet_b0": 64}

# Appearance shifts applied to val (a stand-in for another cohort's exposure and processing; some lie outside the
# "shift" augmentation's ranges on purpose). Each maps (N, 1, H, W) in [0, 1] to the same shape, deterministically.
SHIFTS = ("gamma 0.6", "gamma 1.6", "contrast 0.6", "brightness +0.1", "blur sigma 1", "noise sigma 0.05")


def shift_images(images: np.ndarray, name: str, seed: int = 0) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    x = np.asarray(images, dtype=np.float32)
    if name.startswith("gamma"):
        out = x ** float(name.split()[1])
    elif name.startswith("contrast"):
        mean = x.mean(axis=(-2, -1), keepdims=True)
        out = mean + (x - mean) * float(name.split()[1])
    elif name.startswith("brightness"):
        out = x + float(name.split()[1])
    elif name.startswith("blur"):
        out = gaussian_filter(x, sigma=(0, 0, float(name.split()[-1]), float(name.split()[-1])))
    elif name.startswith("noise"):
        out = x + np.random.default_rng(seed).normal(0, float(name.split()[-1]), x.shape)
    else:
        raise ValueError(f"unknown shift {name!r}")
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def resolve_recipes(names: str, overrides: dict) -> dict[str, Recipe]:
    """Recipes by name (a registered model name gets the generic recipe); `overrides` replace fields when not None."""
    from radcnn.models.registry import model_names

    recipes = {}
    for name in [n.strip() for n in names.split(",") if n.strip()]:
        if name in RECIPES:
            recipe = RECIPES[name]
        elif name in model_names():
            recipe = replace(GENERIC, model=name, size=max(GENERIC.size, MIN_SIZE.get(name, 0)))
        else:
            valid = sorted(RECIPES) + model_names()
            raise SystemExit(f"unknown recipe or model {name!r}; valid: {', '.join(valid)}")
        recipes[name] = replace(recipe, **{k: v for k, v in overrides.items() if v is not None})
    return recipes


def train_member(task: dict) -> dict:
    """Worker: fit one (recipe, seed) with radcnn, evaluate it on val and test, return metrics and probabilities."""
    import pandas as pd
    import torch

    from radcnn.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from radcnn.data.prepare import prepare_data
    from radcnn.reporting.evaluate_run import evaluate_run
    from radcnn.training.fit import fit

    _quiet()
    torch.set_num_threads(task["threads"])
    recipe = Recipe(**{**task["recipe"], "seeds": tuple(task["recipe"]["seeds"])})
    config = RunConfig(
        data=DataConfig(source=task["npz"], image_size=(recipe.size, recipe.size), label_columns=(task["label"],)),
        model=ModelConfig(name=recipe.model),
        train=TrainConfig(
            epochs=recipe.epochs,
            batch_size=recipe.batch_size,
            lr=recipe.lr,
            seed=task["seed"],
            augment=recipe.augment,
            class_balance=recipe.class_balance,
            lr_schedule=recipe.lr_schedule,
            weight_decay=recipe.weight_decay,
            weight_averaging=recipe.weight_averaging,
            model_selection=recipe.model_selection,
            tta=recipe.tta,
            threshold_method="youden",
            progress_bar=False,
            checkpoint_every_epoch=False,
        ),
    )
    data = prepare_data(config.data, seed=task["seed"])
    wall, cpu = time.perf_counter(), time.process_time()
    result = fit(config, task["run_dir"], data=data)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    out = {
        "name": f"{task['recipe_name']} seed {task['seed']}",
        "recipe": task["recipe_name"],
        "seed": task["seed"],
        "precision": result.precision,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "threads": task["threads"],
        "train_wall_seconds": round(wall, 1),
        "train_cpu_seconds": round(cpu, 1),
    }
    out |= shifted_val(task["run_dir"], data.splits["val"], task["label"])
    for split in ("val", "test"):
        evaluation = evaluate_run(task["run_dir"], split=split, n_boot=task["n_boot"], data=data)
        label = evaluation.metrics["labels"][task["label"]]
        out[split] = _summary(label["metrics"], label["ci95"])
        out["threshold"] = {"value": label["threshold"], "method": label["threshold_source"]}
        table = pd.read_csv(evaluation.predictions_path)
        out[f"{split}_labels"] = table[f"{task['label']}_true"].to_numpy().tolist()
        out[f"{split}_probs"] = table[f"{task['label']}_probability"].to_numpy().tolist()
    return out


def shifted_val(run_dir: str, val, label: str) -> dict:
    """AUC and accuracy (at the run's val threshold) on every shifted copy of val, their mean and the worst;
    also val AUC without test-time augmentation (to show what TTA adds)."""
    from radcnn.evaluation.metrics import binary_metrics
    from radcnn.models.inference import predict_probabilities
    from radcnn.runs import RunDir

    model, spec = RunDir(run_dir).load_model()
    y = np.asarray(val.labels[:, 0])
    threshold = float(spec.thresholds[0])
    rows = {}
    for name in SHIFTS:
        p = predict_probabilities(model, shift_images(val.images, name), tta=spec.tta)[:, 0]
        scored = binary_metrics(y, p, threshold)
        rows[name] = {"roc_auc": round(float(scored["roc_auc"]), 4), "accuracy": round(float(scored["accuracy"]), 4)}
    summary = {
        k: {"mean": round(float(np.mean([r[k] for r in rows.values()])), 4), "worst": min(r[k] for r in rows.values())}
        for k in ("roc_auc", "accuracy")
    }
    plain = predict_probabilities(model, val.images, tta="none")[:, 0]
    return {
        "shifted_val": {"shifts": rows, **summary},
        "val_without_tta": {"roc_auc": round(float(binary_metrics(y, plain, threshold)["roc_auc"]), 4)},
    }


def _quiet() -> None:
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _summary(metrics: dict, ci: dict) -> dict:
    """The reported metrics as {name: {estimate, low, high}} (low/high absent when no bootstrap was run)."""
    out = {}
    for name in REPORTED:
        entry = {"estimate": round(float(metrics[name]), 4)}
        if name in ci:
            entry |= {"low": round(ci[name]["low"], 4), "high": round(ci[name]["high"], 4)}
        out[name] = entry
    return out


def score_probabilities(y_val, p_val, y_test, p_test, *, n_boot: int, seed: int = 0) -> dict:
    """Threshold chosen on val (Youden's J), applied to test; metrics with 95% CIs (each image its own patient)."""
    from radcnn.evaluation.thresholds import choose_threshold

    choice = choose_threshold(y_val, p_val, "youden")
    out = {"threshold": {"value": choice.threshold, "method": "youden on val"}}
    for split, y, p in (("val", y_val, p_val), ("test", y_test, p_test)):
        out[split] = _scored(y, p, choice.threshold, n_boot, seed)
    return out


def _scored(y, p, threshold: float, n_boot: int, seed: int) -> dict:
    from radcnn.evaluation.bootstrap import metrics_with_ci
    from radcnn.evaluation.metrics import binary_metrics

    groups = np.arange(len(y))
    ci = metrics_with_ci(y, p, groups, threshold, n_boot=n_boot, seed=seed) if n_boot > 0 else {}
    return _summary(binary_metrics(y, p, threshold), ci)


def prior_shift_threshold(y_val, p_val, p_test, *, max_iter: int = 1000, tol: float = 1e-8) -> dict:
    """Saerens, Latinne & Decaestecker (2002): estimate the test prevalence by EM on unlabelled test probabilities.

    The ensemble's probabilities are first calibrated on val (Platt scaling of the logit), so that they are posteriors
    under val's prevalence; EM then re-weights them to the prevalence that explains the test predictions. The
    returned threshold (on the uncalibrated probability scale) is the Bayes decision for accuracy under the
    estimated test prevalence. No test label is used.
    """
    from sklearn.linear_model import LogisticRegression

    def logit(p):
        p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p))

    platt = LogisticRegression(C=1.0).fit(logit(p_val)[:, None], np.asarray(y_val, dtype=int))
    slope, intercept = float(platt.coef_[0, 0]), float(platt.intercept_[0])
    if slope <= 0:
        return {"error": "Platt slope on val is not positive; no prior-shift threshold"}
    prior_val = float(np.mean(y_val))
    posterior = platt.predict_proba(logit(p_test)[:, None])[:, 1]
    prior = prior_val
    for iteration in range(1, max_iter + 1):  # noqa: B007  (the count is reported below)
        pos = prior / prior_val * posterior
        neg = (1 - prior) / (1 - prior_val) * (1 - posterior)
        new = float(np.mean(pos / (pos + neg)))
        if abs(new - prior) < tol:
            prior = new
            break
        prior = new
    prior = min(max(prior, 1e-4), 1 - 1e-4)
    # Adjusted posterior >= 0.5  <=>  slope*z + intercept >= logit(prior_val) - logit(prior).
    z_cut = (math.log(prior_val / (1 - prior_val)) - math.log(prior / (1 - prior)) - intercept) / slope
    return {
        "value": float(1 / (1 + math.exp(-z_cut))),
        "method": "Saerens EM prior-shift correction (Platt-calibrated on val, unlabelled test probabilities)",
        "val_prevalence": round(prior_val, 4),
        "estimated_test_prevalence": round(prior, 4),
        "em_iterations": iteration,
    }


def add_prior_shift(entry: dict, y_val, p_val, y_test, p_test, n_boot: int) -> None:
    shift = prior_shift_threshold(y_val, p_val, p_test)
    if "value" in shift:
        shift["test"] = _scored(np.asarray(y_test), np.asarray(p_test), shift["value"], n_boot, 0)
    entry["alternative_threshold"] = shift


def beats(entry: dict) -> dict:
    test = entry["test"]
    return {
        "auc": test["roc_auc"]["estimate"] > BEST_OPEN["auc"],
        "acc": test["accuracy"]["estimate"] > BEST_OPEN["acc"],
    }


class LoadSampler:
    """Samples the 1-minute load average every few seconds, so the report says how busy the machine was."""

    def __init__(self, every: float = 10.0):
        self.samples = [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            self.samples.append(os.getloadavg()[0])

    def stop(self) -> dict:
        self._stop.set()
        self.samples.append(os.getloadavg()[0])
        return {"min": min(self.samples), "mean": round(float(np.mean(self.samples)), 2), "max": max(self.samples)}


def file_summary(npz: str) -> tuple[str, dict]:
    from radcnn.data.layouts.medmnist_arrays import load_medmnist

    parts = load_medmnist(npz)
    labels = parts["train"].labels
    if labels.shape[1] != 1 or not set(np.unique(labels)) <= {0.0, 1.0}:
        raise SystemExit(f"{npz}: this benchmark needs one binary label column (e.g. PneumoniaMNIST, BreastMNIST)")
    counts = {
        name: {"n": len(part), "positive_fraction": round(float(part.labels.mean()), 4), "side": part.images.shape[1]}
        for name, part in parts.items()
    }
    if "val" not in parts or "test" not in parts:
        raise SystemExit(f"{npz}: needs train, val and test arrays (an official MedMNIST file has all three)")
    return ("pneumonia" if "pneumonia" in Path(npz).name.lower() else "positive"), counts


def run(args: argparse.Namespace) -> dict:
    import torch

    _quiet()
    label, counts = file_summary(args.npz)
    overrides = {
        "epochs": args.epochs,
        "size": args.size,
        "seeds": tuple(int(s) for s in args.seeds.split(",")) if args.seeds else None,
        "augment": args.augment,
        "class_balance": args.class_balance,
        "lr": args.lr,
    }
    recipes = resolve_recipes(args.models, overrides)
    cores = os.cpu_count() or 1
    n_members = sum(len(r.seeds) for r in recipes.values())
    jobs = args.jobs or max(1, min(n_members, cores))
    threads = args.threads or max(1, cores // jobs)
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="radcnn-medmnist-"))
    tasks = [
        {
            "npz": str(Path(args.npz).resolve()),
            "label": label,
            "recipe_name": name,
            "recipe": asdict(recipe),
            "seed": seed,
            "threads": threads,
            "n_boot": args.n_boot,
            "run_dir": str(work / f"{name}-seed{seed}"),
        }
        for name, recipe in recipes.items()
        for seed in recipe.seeds
    ]
    load = LoadSampler()
    start = time.perf_counter()
    try:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            members = list(pool.map(train_member, tasks))
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    total_wall = time.perf_counter() - start
    load_stats = load.stop()

    results = []
    pooled = []
    headline = None
    for name, recipe in recipes.items():
        mine = [m for m in members if m["recipe"] == name]
        for m in mine:
            add_prior_shift(m, m["val_labels"], m["val_probs"], m["test_labels"], m["test_probs"], args.n_boot)
            m["beats_open_baselines"] = beats(m)
        results += [{k: v for k, v in m.items() if not k.endswith(("_labels", "_probs"))} for m in mine]
        entry = ensemble_entry(name, recipe, mine, args.n_boot, cores)
        pooled.append(mine)
        if len(mine) > 1:
            results.append(entry)
        headline = headline or entry["name"]  # the first recipe named (the default recipe by default)
    if len(recipes) > 1 and args.ensemble_all:
        results.append(ensemble_entry("all recipes", None, [m for group in pooled for m in group], args.n_boot, cores))
    carve_out = "_dev" in Path(args.npz).name
    return {
        "benchmark": "MedMNIST binary classification (radcnn fit + evaluate_run)",
        "npz": str(args.npz),
        "splits": counts,
        "note": (
            "thresholds are chosen on val (Youden's J); alternative_threshold uses EM on unlabelled test "
            "probabilities (no test labels). CIs: 95% percentile bootstrap, each image its own patient."
        ),
        "headline": headline,
        "test_split": "a carve-out of train (dev file): compare on val and shifted_val" if carve_out else "official",
        "results": results,
        "table_markdown": markdown_table(results, carve_out),
        "published_pneumoniamnist_test": PUBLISHED,
        "best_open_baseline": BEST_OPEN,
        "machine": {
            "cpu_cores": cores,
            "parallel_jobs": jobs,
            "threads_per_job": threads,
            "torch": torch.__version__,
            "load_average_1min_during_run": load_stats,
            "total_wall_seconds": round(total_wall, 1),
        },
    }


def markdown_table(results: list[dict], carve_out: bool) -> str:
    """The measured rows beside the published PneumoniaMNIST test rows (which are on the official test split)."""
    test = "dev test (carve-out of train)" if carve_out else "test"
    lines = [
        f"| model | val AUC | val ACC | shifted-val AUC mean / worst | shifted-val ACC mean | {test} AUC / ACC | train CPU s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        shifted = r.get("shifted_val")
        lines.append(
            f"| {r['name']} | {r['val']['roc_auc']['estimate']:.3f} | {r['val']['accuracy']['estimate']:.3f} | "
            + (f"{shifted['roc_auc']['mean']:.3f} / {shifted['roc_auc']['worst']:.3f} | " if shifted else "– | ")
            + (f"{shifted['accuracy']['mean']:.3f} | " if shifted else "– | ")
            + f"{r['test']['roc_auc']['estimate']:.3f} / {r['test']['accuracy']['estimate']:.3f} | "
            + f"{r.get('train_cpu_seconds', '–')} |"
        )
    for name, row in PUBLISHED.items():
        lines.append(f"| {name} (published, official test) | | | | | {row['auc']:.3f} / {row['acc']:.3f} | |")
    return "\n".join(lines)


def ensemble_entry(name: str, recipe: Recipe | None, members: list[dict], n_boot: int, cores: int) -> dict:
    y_val = np.asarray(members[0]["val_labels"])
    y_test = np.asarray(members[0]["test_labels"])
    p_val = np.mean([m["val_probs"] for m in members], axis=0)
    p_test = np.mean([m["test_probs"] for m in members], axis=0)
    entry = {"name": f"{name} ensemble of {len(members)}" if len(members) > 1 else members[0]["name"]}
    if recipe is not None:
        entry["recipe"] = asdict(recipe)
    entry |= score_probabilities(y_val, p_val, y_test, p_test, n_boot=n_boot)
    add_prior_shift(entry, y_val, p_val, y_test, p_test, n_boot)
    cpu = sum(m["train_cpu_seconds"] for m in members)
    entry["train_cpu_seconds"] = round(cpu, 1)
    entry["train_wall_seconds_sum"] = round(sum(m["train_wall_seconds"] for m in members), 1)
    entry["idle_wall_estimate_seconds"] = round(cpu / min(cores, len(members)), 1)
    entry["beats_open_baselines"] = beats(entry)
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npz", required=True, help="MedMNIST 2-D .npz with train/val/test arrays")
    parser.add_argument(
        "--models",
        default=DEFAULT_RECIPES,
        help=f"comma list of recipes ({', '.join(RECIPES)}) or registered models; 'table' = {TABLE}",
    )
    parser.add_argument("--epochs", type=int, help="override every recipe's epochs")
    parser.add_argument("--size", type=int, help="override every recipe's image side (upsampled from the file's)")
    parser.add_argument("--seeds", help="override every recipe's seeds, e.g. 0,1,2")
    parser.add_argument(
        "--augment", choices=("none", "light", "standard", "strong", "shift"), help="override the preset"
    )
    parser.add_argument("--class-balance", choices=("none", "pos_weight", "sampler"), help="override class balance")
    parser.add_argument("--lr", type=float, help="override the learning rate")
    parser.add_argument("--ensemble-all", action="store_true", help="also score the average of every recipe's models")
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--quick", action="store_true", help="smoke test: one seed_cnn, 2 epochs, 200 resamples")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the CIs")
    parser.add_argument("--jobs", type=int, help="parallel training processes (default: min(members, cores))")
    parser.add_argument("--threads", type=int, help="torch threads per process (default: cores / jobs)")
    parser.add_argument("--work-dir", help="keep the run directories here (default: a temporary folder)")
    args = parser.parse_args()
    if args.quick:
        args.models, args.n_boot = "quick", min(args.n_boot, 200)
    if args.models == "table":
        args.models = TABLE
    report = run(args)
    text = json.dumps(report, indent=2)
    if args.out:
        from radcnn.io import write_text_atomic

        write_text_atomic(args.out, text + "\n")
    print(text)


if __name__ == "__main__":
    main()
