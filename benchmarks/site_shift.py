"""Site shift on the phantom: how much ROC AUC the default recipe loses on a scanner site it never saw.

    python benchmarks/site_shift.py --seeds 0 1 2 --hold-out site_c

For each seed: synthesise the demo's phantom dataset (`radcnn.phantom.synth`, three scanner sites), train the
demo's default recipe (`radcnn.demo.DemoSettings`: seed CNN, 128 px, 10 epochs, the `TrainConfig` defaults) with
one site held out (`data.hold_out_site`), and evaluate it (`radcnn evaluate`): internal test AUC (the two
training sites' patient-level test split) against the held-out site's AUC, both with patient-bootstrap 95%
intervals, and the gap = internal − held-out. The threshold is the run's own (chosen on val), carried over.

Prints one JSON object: per-run rows, the mean and worst gap over seeds, and whether the target (gap < 0.03) is
met. The machine's load average is recorded beside the training times (they are inflated on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path


def one_run(root: Path, seed: int, site: str, args) -> dict:
    from radcnn.config import DataConfig, RunConfig, TrainConfig
    from radcnn.demo import DemoSettings
    from radcnn.phantom.synth import synthesize_dataset
    from radcnn.reporting.evaluate_run import evaluate_run
    from radcnn.training.fit import fit

    demo = DemoSettings()
    synth = synthesize_dataset(
        root / f"data_{seed}",
        n_patients=args.patients or demo.n_patients,
        size=demo.stored_size,
        fmt="dicom",
        seed=seed,
    )
    size = args.size or demo.model_size
    config = RunConfig(
        data=DataConfig(source=str(synth.csv_path), image_size=(size, size), hold_out_site=site),
        train=TrainConfig(
            epochs=args.epochs or demo.epochs,
            seed=seed,
            progress_bar=False,
            **({"augment": args.augment} if args.augment else {}),
        ),
    )
    start = time.perf_counter()
    result = fit(config, root / f"run_{seed}_{site}")
    seconds = time.perf_counter() - start
    metrics = evaluate_run(result.run_dir, n_boot=args.bootstrap, seed=seed).metrics
    label = next(iter(metrics["labels"]))
    internal = metrics["labels"][label]
    external = next(iter(metrics["external"].values()))["labels"][label]

    def auc(entry: dict) -> dict:
        ci = entry["ci95"].get("roc_auc", {})
        return {"estimate": entry["metrics"]["roc_auc"], "low": ci.get("low"), "high": ci.get("high")}

    return {
        "seed": seed,
        "held_out_site": site,
        "label": label,
        "internal_test": {"n_images": metrics["n_images"], "roc_auc": auc(internal)},
        "held_out": {"n_images": next(iter(metrics["external"].values()))["n_images"], "roc_auc": auc(external)},
        "gap": internal["metrics"]["roc_auc"] - external["metrics"]["roc_auc"],
        "held_out_ece": external["metrics"]["ece"],
        "internal_ece": internal["metrics"]["ece"],
        "train_seconds": seconds,
        "loadavg_after": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--hold-out", nargs="+", default=["site_c"], help="sites to hold out, one run each")
    parser.add_argument("--patients", type=int, default=0, help="0: the demo's (200)")
    parser.add_argument("--epochs", type=int, default=0, help="0: the demo's (10)")
    parser.add_argument("--size", type=int, default=0, help="0: the demo's (128)")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--augment", default="", help="train.augment preset (default: the TrainConfig default)")
    parser.add_argument("--target", type=float, default=0.03)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    rows = []
    with tempfile.TemporaryDirectory(prefix="radcnn-site-shift-") as tmp:
        for seed in args.seeds:
            for site in args.hold_out:
                rows.append(one_run(Path(tmp), seed, site, args))
    gaps = [row["gap"] for row in rows]
    print(
        json.dumps(
            {
                "benchmark": "site_shift",
                "recipe": f"radcnn demo defaults (seed_cnn, TrainConfig defaults), augment={args.augment or 'default'}",
                "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "loadavg": os.getloadavg()},
                "runs": rows,
                "mean_gap": sum(gaps) / len(gaps),
                "worst_gap": max(gaps),
                "target": args.target,
                "target_met": max(gaps) < args.target,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
