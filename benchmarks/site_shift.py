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
import sys
import tempfile
import time
from pathlib import Path


def _overrides(items: list[str]) -> dict:
    """`--set KEY=VALUE` pairs for `TrainConfig` (values parsed as YAML scalars: 5, 0.1, ema, true)."""
    import yaml

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--set expects train.KEY=VALUE, got {item!r}")
        out[key.strip().removeprefix("train.")] = yaml.safe_load(value)
    return out


def gap_interval(run_dir: Path, metrics: dict, label: str, n_boot: int, seed: int) -> dict:
    """Bootstrap interval of the gap (internal AUC minus held-out AUC) for one trained model.

    The two cohorts hold different patients, so each resample draws patients with replacement from both
    independently (radcnn.evaluation's patient-level resampling) and takes the difference of the two AUCs.
    An interval that contains 0 means this seed's gap cannot be told apart from test-set noise.
    """
    import numpy as np

    from radcnn.evaluation.arrays import clean_binary
    from radcnn.evaluation.bootstrap import bootstrap_samples
    from radcnn.runs import RunDir, predictions_name

    run = RunDir(run_dir)
    external = next(iter(metrics["external"].values()))
    samples = []
    for i, name in enumerate([predictions_name("test"), external["predictions"]]):
        table = run.read_table(name)
        data = clean_binary(table[f"{label}_true"], table[f"{label}_probability"], table["patient_id"])
        samples.append(bootstrap_samples(data, ["roc_auc"], n_boot=n_boot, seed=seed * 2 + i)["roc_auc"])
    diffs = samples[0] - samples[1]
    valid = diffs[~np.isnan(diffs)]
    low, high = (float(v) for v in np.quantile(valid, [0.025, 0.975]))
    return {"low": low, "high": high, "n_valid": int(valid.size), "contains_zero": low <= 0.0 <= high}


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
            **_overrides(args.set),
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
        "gap_ci95": gap_interval(result.run_dir, metrics, label, args.bootstrap, seed),
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
    parser.add_argument(
        "--set", action="append", default=[], metavar="train.KEY=VALUE", help="TrainConfig override, repeatable"
    )
    parser.add_argument("--target", type=float, default=0.03)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    rows = []
    with tempfile.TemporaryDirectory(prefix="radcnn-site-shift-") as tmp:
        for seed in args.seeds:
            for site in args.hold_out:
                rows.append(one_run(Path(tmp), seed, site, args))
                print(json.dumps({"partial_row": rows[-1]}), file=sys.stderr, flush=True)
    gaps = [row["gap"] for row in rows]
    print(
        json.dumps(
            {
                "benchmark": "site_shift",
                "recipe": f"radcnn demo defaults (seed_cnn, TrainConfig defaults), augment={args.augment or 'default'}"
                + "".join(f", {item}" for item in args.set),
                "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "loadavg": os.getloadavg()},
                "runs": rows,
                "mean_gap": sum(gaps) / len(gaps),
                "worst_gap": max(gaps),
                "mean_held_out_auc": sum(r["held_out"]["roc_auc"]["estimate"] for r in rows) / len(rows),
                "target": args.target,
                "target_met": max(gaps) < args.target,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
