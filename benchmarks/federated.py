"""Federated learning on the phantom: its three scanners (site_a, site_b, site_c) are three hospitals.

Prints one JSON object: test ROC AUC (nodule) of FedAvg and FedProx after R rounds × E local epochs on Flower's
simulation engine, of centralised training on the pooled training images for R·E epochs, and of each site alone
for R·E epochs — same data, same patient-level split, same training code and seed (`radcnn federated baselines`).
Model selection uses the val split only (each model keeps its best round / E-epoch point on val); the AUCs are on
the test split. Each seed draws a new phantom and trains anew; the headline keys are means over seeds and
``per_seed`` holds every run with the patient-level paired bootstrap interval of federated − baseline. The test
split is half the patients by default so that a difference of 0.02 AUC is not lost in the noise of a small test
set; the defaults (30 rounds × 1 local epoch) were chosen on val (FedAvg val AUC) against 10 × 1, 10 × 2 and 20 × 1.
``dp_epsilon``, ``dp_auc`` and ``nondp_auc`` come from benchmarks/dp.py's `compare`, measured in the same run: DP-SGD at ε ≤ 8, δ = 1/N against
non-private training of the same model on PneumoniaMNIST (the dev file's official train part; val scores).
``--skip`` leaves parts out (their keys are null): federated (FedAvg + baselines), fedprox, baselines, dp.

    python benchmarks/federated.py                      # 450 patients, 64 px, 30 rounds × 1 epoch, seeds 0 1 2
    python benchmarks/federated.py --skip federated --skip fedprox   # only the DP comparison
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")


def _test_auc(run_dir: Path) -> float:
    from radcnn.federated import task
    from radcnn.runs import RunDir

    run = RunDir.open(run_dir)
    model, spec = run.load_model()
    data = run.rebuild_data()
    return float(task.evaluate_model(model, data.splits["test"], spec)["auc"])


def _dp_compare(**kwargs) -> dict:
    """benchmarks/dp.py's `compare` (benchmarks/ is not a package: load it by path)."""
    spec = importlib.util.spec_from_file_location("radcnn_benchmark_dp", Path(__file__).with_name("dp.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.compare(**kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=450)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--local-epochs", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="data + training seeds; means reported")
    parser.add_argument("--val-fraction", type=float, default=0.15)
    parser.add_argument("--test-fraction", type=float, default=0.5)
    parser.add_argument("--work", type=Path, default=None, help="Folder for data and runs (default: a temp dir).")
    parser.add_argument("--skip", action="append", default=[], choices=["federated", "fedprox", "baselines", "dp"],
                        help="leave a part out (repeatable); its keys are null")  # fmt: skip
    parser.add_argument("--dp-npz", type=Path, default=Path("../shared/data/pneumoniamnist_dev.npz"))
    parser.add_argument("--dp-epochs", type=int, default=5)
    parser.add_argument("--dp-epsilon", type=float, default=8.0)
    args = parser.parse_args()
    skip = set(args.skip)

    started = time.perf_counter()
    work = args.work or Path(tempfile.mkdtemp(prefix="radcnn-fed-bench-"))
    timings: dict[str, float] = {}
    result: dict = {"centralised_auc": None, "fedavg_auc": None, "fedprox_auc": None, "site_alone_auc": None}
    if "federated" not in skip:
        result.update(_federated(args, work, skip, timings))
    dp = None
    if "dp" not in skip:
        t = time.perf_counter()
        dp = _dp_compare(npz=args.dp_npz, epochs=args.dp_epochs, epsilon=args.dp_epsilon, seed=args.seeds[0])
        timings["dp_seconds"] = round(time.perf_counter() - t, 1)
    result.update(
        {
            "dp_epsilon": dp["dp_epsilon"] if dp else None,
            "dp_auc": dp["dp_auc"] if dp else None,
            "nondp_auc": dp["nondp_auc"] if dp else None,
            "dp_delta": dp["dp_delta"] if dp else None,
            "dp_auc_gap": dp["auc_gap"] if dp else None,
            "dp_detail": dp,
            "rounds": args.rounds,
            "local_epochs": args.local_epochs,
            "skipped": sorted(skip),
            **timings,
            "wall_seconds": round(time.perf_counter() - started, 1),
            "loadavg": [round(x, 2) for x in os.getloadavg()],
            "cpus": os.cpu_count(),
        }
    )
    print(json.dumps(result))


def _federated(args, work: Path, skip: set[str], timings: dict) -> dict:
    """FedAvg (+ FedProx) and the baselines for every seed; the headline keys are means over seeds."""
    runs = []
    for seed in args.seeds:
        runs.append(_federated_seed(args, seed, work / f"seed{seed}", skip, timings))
    result: dict = {"patients": args.patients, "size": args.size, "seeds": args.seeds, "per_seed": runs,
                    "val_fraction": args.val_fraction, "test_fraction": args.test_fraction}  # fmt: skip
    for key in ("fedavg_auc", "fedprox_auc", "centralised_auc", "fedavg_val_auc", "centralised_val_auc"):
        values = [r[key] for r in runs if r.get(key) is not None]
        result[key] = _mean(values)
    if runs and runs[0].get("site_alone_auc") is not None:
        result["sites"] = runs[0]["sites"]
        result["site_alone_auc"] = [_mean([r["site_alone_auc"][k] for r in runs]) for k in range(len(result["sites"]))]
        result["site_alone_val_auc"] = [
            _mean([r["site_alone_val_auc"][k] for r in runs]) for k in range(len(result["sites"]))
        ]
        result["fedavg_minus_centralised"] = [r["comparison"]["centralised"] for r in runs]
        result["fedavg_minus_site_alone"] = {name: [r["comparison"][name] for r in runs] for name in result["sites"]}
    return result


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _federated_seed(args, seed: int, work: Path, skip: set[str], timings: dict) -> dict:
    from radcnn.federated.baselines import train_baselines
    from radcnn.federated.config import FederatedConfig
    from radcnn.federated.simulate import simulate
    from radcnn.phantom.synth import synthesize_dataset

    data = synthesize_dataset(work / "phantom", n_patients=args.patients, size=args.size, fmt="png", seed=seed,
                              workers=2, overwrite=True)  # fmt: skip
    config = work / "config.yaml"
    config.write_text(
        f"data:\n  source: {data.csv_path}\n  image_size: [{args.size}, {args.size}]\n  label_columns: [nodule]\n"
        f"  val_fraction: {args.val_fraction}\n  test_fraction: {args.test_fraction}\n"
        f"train:\n  batch_size: 32\n  seed: {seed}\n  progress_bar: false\n",
        encoding="utf-8",
    )
    common = {"config": str(config), "num_server_rounds": args.rounds, "local_epochs": args.local_epochs,
              "overwrite": True}  # fmt: skip
    t = time.perf_counter()
    simulate(FederatedConfig(run_dir=str(work / "fedavg"), strategy="fedavg", **common))
    _add(timings, "fedavg_seconds", time.perf_counter() - t)
    result = {"seed": seed, "fedavg_auc": _test_auc(work / "fedavg"), "images": data.n_images}
    if "fedprox" not in skip:
        t = time.perf_counter()
        simulate(FederatedConfig(run_dir=str(work / "fedprox"), strategy="fedprox", proximal_mu=0.01, **common))
        _add(timings, "fedprox_seconds", time.perf_counter() - t)
        result["fedprox_auc"] = _test_auc(work / "fedprox")
    if "baselines" not in skip:
        t = time.perf_counter()
        baselines = train_baselines(work / "fedavg")
        _add(timings, "baselines_seconds", time.perf_counter() - t)
        result.update(
            {
                "centralised_auc": baselines["centralised"]["test_auc"],
                "fedavg_auc": baselines["federated"]["test_auc"],
                "site_alone_auc": [s.get("test_auc") for s in baselines["sites"]],
                "sites": [s["name"] for s in baselines["sites"]],
                "site_train_images": [s["train_images"] for s in baselines["sites"]],
                "centralised_val_auc": baselines["centralised"]["val_auc"],
                "fedavg_val_auc": baselines["federated"]["val_auc"],
                "site_alone_val_auc": [s.get("val_auc") for s in baselines["sites"]],
                "epochs_per_baseline": baselines["epochs"],
                "comparison": {
                    name: {k: round(v, 4) if isinstance(v, float) else v for k, v in c.items() if k in _KEPT}
                    for name, c in baselines["comparison"].items()
                },
            }
        )
    return result


_KEPT = ("diff", "ci_low", "ci_high", "p_value", "n", "n_positive")


def _add(timings: dict, key: str, seconds: float) -> None:
    timings[key] = round(timings.get(key, 0.0) + seconds, 1)


if __name__ == "__main__":
    main()
