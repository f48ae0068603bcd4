"""What federation bought: the same data and the same number of passes trained centrally (all clients' training
images pooled) and at each site alone, scored beside the federated model on the same held-out splits.

Same epochs means: a federated run of R rounds × E local epochs showed every client its data R·E times, so each
baseline trains R·E epochs, with the same radcnn training code (`task.local_train`, mu = 0) and seed. Scores are
on the run's val split (the server's held-out set) and test split, overall and per site (each site's own test
rows), written to ``federated/baselines.json`` for `radcnn report`.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from radcnn.data.datamodule import ArraySplit
from radcnn.errors import DataError
from radcnn.federated import task
from radcnn.federated.config import FederatedConfig
from radcnn.runs import FEDERATED_BASELINES, FEDERATED_HISTORY, RunDir

log = logging.getLogger(__name__)


def train_baselines(run_dir: str | Path, *, progress=None) -> dict:
    """Train the centralised and site-alone baselines of a finished federated run; returns what it wrote."""
    run = RunDir.open(run_dir)
    history = run.read_json(FEDERATED_HISTORY)
    fed = FederatedConfig.from_mapping(history["settings"], where=str(run.file(FEDERATED_HISTORY)))
    rounds, local_epochs = len(history["rounds"]), fed.local_epochs
    epochs = rounds * local_epochs
    fed = fed.with_changes(local_epochs=epochs, dp_epsilon=0.0)
    config = run.config()
    data = run.rebuild_data()
    seed = config.train.seed if fed.seed < 0 else fed.seed
    spec = task.model_spec(config, data)
    parts = task.server_partitions(data, fed, seed)
    splits = data.partitions
    held_out = [s for s in ("val", "test") if len(data.splits[s])]
    site_tests = {
        name: task.subset(data, np.flatnonzero((parts.assignment == k) & (splits == "test")))
        for k, name in enumerate(parts.names)
    }
    federated, _ = run.load_model()
    results: dict = {
        "epochs": epochs,
        "rounds": rounds,
        "local_epochs": local_epochs,
        "federated": _scores(federated, data, held_out, site_tests, spec),
    }
    steps = 1 + len(parts.names)
    centralised = task.new_model(spec, seed)
    task.local_train(centralised, _client("centralised", data.splits["train"], data, spec, config), fed, mu=0.0,
                     seed=seed)  # fmt: skip
    results["centralised"] = {
        "train_images": len(data.splits["train"]),
        **_scores(centralised, data, held_out, site_tests, spec),
    }
    if progress:
        progress(1, steps)
    results["sites"] = []
    for k, name in enumerate(parts.names):
        rows = np.flatnonzero((parts.assignment == k) & (splits == "train"))
        train = task.subset(data, rows)
        entry: dict = {"name": name, "train_images": len(train)}
        if len(train) == 0 or np.isnan(train.labels).all():
            entry["note"] = "no labelled training images"
        else:
            model = task.new_model(spec, seed)
            task.local_train(model, _client(name, train, data, spec, config), fed, mu=0.0, seed=seed + k + 1)
            entry.update(_scores(model, data, held_out, site_tests, spec))
        results["sites"].append(entry)
        if progress:
            progress(2 + k, steps)
    run.write_json(FEDERATED_BASELINES, results)
    log.info(
        "baselines of %s: federated val AUC %.4f, centralised %.4f, sites %s", run.path,
        results["federated"]["val_auc"], results["centralised"]["val_auc"],
        ", ".join(f"{s['name']} {s.get('val_auc', math.nan):.4f}" for s in results["sites"]),
    )  # fmt: skip
    return results


def _client(name: str, train: ArraySplit, data, spec, config) -> task.ClientData:
    return task.ClientData(name, train, data.splits["val"], spec, config)


def _scores(model, data, held_out: list[str], site_tests: dict[str, ArraySplit], spec) -> dict:
    out: dict = {}
    for split in held_out:
        metrics = task.evaluate_model(model, data.splits[split], spec)
        out[f"{split}_auc"] = metrics["auc"]
        out[f"{split}_loss"] = metrics["loss"]
    out["site_test_auc"] = {}
    for name, split in site_tests.items():
        try:
            out["site_test_auc"][name] = task.evaluate_model(model, split, spec)["auc"] if len(split) else None
        except DataError as exc:
            log.info("site %s: no test AUC (%s)", name, exc)
            out["site_test_auc"][name] = None
    return out
