"""What federation bought: the same data and the same number of passes trained centrally (all clients' training
images pooled) and at each site alone, scored beside the federated model on the same held-out splits.

Same epochs means: a federated run of R rounds × E local epochs showed every client its data R·E times, so each
baseline trains R·E epochs, with the same radcnn training code (`task.local_train`, mu = 0) and seed. Same
selection means: the federated run keeps the global model of its best round on val, so each baseline is scored on
val after every E epochs (the points where a round ends) and keeps its best such state. Scores are
on the run's val split (the server's held-out set) and test split, overall and per site (each site's own test
rows), written to ``federated/baselines.json`` for `radcnn report`. `comparison` holds, for every baseline, the
test-split difference federated − baseline of the first label's AUC with a patient-level paired bootstrap 95 %
interval (`radcnn.evaluation.compare`): "the federated model is better than site X alone" is a claim only when
that interval lies above 0.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from radcnn.data.loaders import ArraySplit
from radcnn.errors import DataError
from radcnn.evaluation.compare import paired_bootstrap_auc_difference
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
    trained = {}
    centralised = trained["centralised"] = task.new_model(spec, seed)
    chosen = _train_selected(centralised, _client("centralised", data.splits["train"], data, spec, config), fed,
                             local_epochs, seed)  # fmt: skip
    results["centralised"] = {
        "train_images": len(data.splits["train"]),
        "selected_epoch": chosen,
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
            model = trained[name] = task.new_model(spec, seed)
            entry["selected_epoch"] = _train_selected(model, _client(name, train, data, spec, config), fed,
                                                      local_epochs, seed + k + 1)  # fmt: skip
            entry.update(_scores(model, data, held_out, site_tests, spec))
        results["sites"].append(entry)
        if progress:
            progress(2 + k, steps)
    results["comparison"] = _compare_on_test(data, spec, federated, trained)
    run.write_json(FEDERATED_BASELINES, results)
    log.info(
        "baselines of %s: federated val AUC %.4f, centralised %.4f, sites %s", run.path,
        results["federated"]["val_auc"], results["centralised"]["val_auc"],
        ", ".join(f"{s['name']} {s.get('val_auc', math.nan):.4f}" for s in results["sites"]),
    )  # fmt: skip
    return results


def _train_selected(model, client: task.ClientData, fed: FederatedConfig, every: int, seed: int) -> int | None:
    """Train for fed.local_epochs, then load the state with the best val AUC among those after every `every`
    epochs (the federated run's round ends); returns that epoch (None: val AUC never defined, last state kept)."""
    keeper = _best_on_val(client.val, client.spec, every)
    task.local_train(model, client, fed, mu=0.0, seed=seed, callbacks=[keeper])
    if keeper.state is not None:
        model.load_state_dict(keeper.state)
    return keeper.epoch


def _best_on_val(val: ArraySplit, spec, every: int):
    import lightning as L  # noqa: PLC0415 (heavy; only when baselines train)

    class KeepBestOnVal(L.Callback):
        def __init__(self) -> None:
            self.state, self.epoch, self.auc = None, None, -math.inf

        def on_train_epoch_end(self, trainer, module) -> None:
            epoch = trainer.current_epoch + 1
            if epoch % every and epoch != trainer.max_epochs:
                return
            auc = task.evaluate_model(module.model, val, spec)["auc"]  # restores train mode itself
            if not math.isnan(auc) and auc > self.auc:
                self.auc, self.epoch = auc, epoch
                self.state = {k: v.detach().clone() for k, v in module.model.state_dict().items()}

    return KeepBestOnVal()


def _compare_on_test(data, spec, federated, baselines: dict) -> dict:
    """Federated − baseline test AUC of the first label, paired bootstrap over patients (1,000 resamples); binary
    and multi-label tasks."""
    from radcnn.models.inference import predict_probabilities  # noqa: PLC0415

    test = data.splits["test"]
    if not len(test) or spec.task == "multiclass":
        return {}  # multiclass AUC is one-vs-rest averaged: no single first-label difference to test
    labels = test.labels[:, 0]
    groups = test.table["patient_id"].astype(str).to_numpy() if "patient_id" in test.table else None
    reference = predict_probabilities(federated, test.images, task=spec.task)[:, 0]
    out = {}
    for name, model in baselines.items():
        probs = predict_probabilities(model, test.images, task=spec.task)[:, 0]
        result = paired_bootstrap_auc_difference(labels, reference, probs, groups, n_boot=1000, seed=0)
        out[name] = {"label": spec.label_names[0], **result.to_dict()}
    return out


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
