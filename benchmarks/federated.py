"""Federated learning on the phantom: its three scanners (site_a, site_b, site_c) are three hospitals.

Prints one JSON object: test ROC AUC (nodule) of FedAvg and FedProx after R rounds × E local epochs on Flower's
simulation engine, of centralised training on the pooled training images for R·E epochs, and of each site alone
for R·E epochs — same data, same patient-level split, same training code and seed (`radcnn federated baselines`).
Model selection uses the val split only; the AUCs are on the test split. ``dp_*`` stay null until radcnn's DP-SGD
module (radcnn.training.dp, another branch) is present.

    python benchmarks/federated.py --patients 450 --size 64 --rounds 5 --local-epochs 2
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=450)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--local-epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None, help="Folder for data and runs (default: a temp dir).")
    args = parser.parse_args()

    from radcnn.federated.baselines import train_baselines
    from radcnn.federated.config import FederatedConfig
    from radcnn.federated.simulate import simulate
    from radcnn.phantom.synth import synthesize_dataset

    started = time.perf_counter()
    work = args.work or Path(tempfile.mkdtemp(prefix="radcnn-fed-bench-"))
    data = synthesize_dataset(work / "phantom", n_patients=args.patients, size=args.size, fmt="png", seed=args.seed,
                              workers=2, overwrite=True)  # fmt: skip
    config = work / "config.yaml"
    config.write_text(
        f"data:\n  source: {data.csv_path}\n  image_size: [{args.size}, {args.size}]\n  label_columns: [nodule]\n"
        f"train:\n  batch_size: 32\n  seed: {args.seed}\n  progress_bar: false\n",
        encoding="utf-8",
    )
    common = {"config": str(config), "num_server_rounds": args.rounds, "local_epochs": args.local_epochs,
              "overwrite": True}  # fmt: skip
    timings = {}
    t = time.perf_counter()
    simulate(FederatedConfig(run_dir=str(work / "fedavg"), strategy="fedavg", **common))
    timings["fedavg_seconds"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    simulate(FederatedConfig(run_dir=str(work / "fedprox"), strategy="fedprox", proximal_mu=0.01, **common))
    timings["fedprox_seconds"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    baselines = train_baselines(work / "fedavg")
    timings["baselines_seconds"] = round(time.perf_counter() - t, 1)

    result = {
        "centralised_auc": baselines["centralised"]["test_auc"],
        "fedavg_auc": baselines["federated"]["test_auc"],
        "fedprox_auc": _test_auc(work / "fedprox"),
        "site_alone_auc": [s.get("test_auc") for s in baselines["sites"]],
        "sites": [s["name"] for s in baselines["sites"]],
        "site_train_images": [s["train_images"] for s in baselines["sites"]],
        "centralised_val_auc": baselines["centralised"]["val_auc"],
        "fedavg_val_auc": baselines["federated"]["val_auc"],
        "site_alone_val_auc": [s.get("val_auc") for s in baselines["sites"]],
        "dp_epsilon": None,
        "dp_auc": None,
        "nondp_auc": None,
        "dp_note": "DP-SGD (radcnn.training.dp) is built on another branch; null until merged",
        "rounds": args.rounds,
        "local_epochs": args.local_epochs,
        "epochs_per_baseline": baselines["epochs"],
        "patients": args.patients,
        "images": data.n_images,
        "size": args.size,
        **timings,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
