"""The federated section of `radcnn report`: per-round global metrics, per-site data and metrics, and the
comparison with centralised training and with each site alone (when `radcnn federated baselines` has run).

Reads only the run's files (``federated/*.json``, see `radcnn.runs`); None for a run that was not federated.
"""

from __future__ import annotations

from radcnn.runs import FEDERATED_BASELINES, FEDERATED_HISTORY, FEDERATED_PARTITIONS, RunDir


def federated_section(run: RunDir) -> dict | None:
    if not run.has(FEDERATED_HISTORY):
        return None
    history = run.read_json(FEDERATED_HISTORY)
    partitions = run.read_json(FEDERATED_PARTITIONS)["clients"] if run.has(FEDERATED_PARTITIONS) else []
    baselines = run.read_json(FEDERATED_BASELINES) if run.has(FEDERATED_BASELINES) else None
    settings = history.get("settings", {})
    rounds = [
        {
            "round": r["round"],
            "val_auc": r["val"].get("auc"),
            "val_loss": r["val"].get("loss"),
            "accepted": r.get("accepted"),
            "replies": r.get("replies"),
            "rejected": r.get("rejected", []),
            "train_loss": _weighted(r.get("clients", []), "train_loss"),
            "seconds": r.get("seconds"),
        }
        for r in history["rounds"]
    ]
    last = history["rounds"][-1] if history["rounds"] else {}
    evaluation = {c.get("name"): c for c in last.get("client_evaluation", [])}
    sites = []
    for client in partitions:
        name = client["name"]
        train = client["splits"].get("train", {})
        val = client["splits"].get("val", {})
        row = {
            "name": name,
            "train_images": train.get("images", 0),
            "train_patients": train.get("patients", 0),
            "train_positives": train.get("positives", {}),
            "val_images": val.get("images", 0),
            "local_val_auc": evaluation.get(name, {}).get("auc"),
        }
        if baselines:
            row["federated_test_auc"] = baselines["federated"].get("site_test_auc", {}).get(name)
            row["centralised_test_auc"] = baselines["centralised"].get("site_test_auc", {}).get(name)
            alone = next((s for s in baselines["sites"] if s["name"] == name), {})
            row["alone_test_auc"] = alone.get("site_test_auc", {}).get(name)
        sites.append(row)
    comparison = None
    if baselines:
        tests = baselines.get("comparison", {})
        comparison = [
            {"model": "federated (this run)", "val_auc": baselines["federated"].get("val_auc"),
             "test_auc": baselines["federated"].get("test_auc")},
            {"model": "centralised (pooled data)", "val_auc": baselines["centralised"].get("val_auc"),
             "test_auc": baselines["centralised"].get("test_auc"), **_difference(tests.get("centralised"))},
        ] + [
            {"model": f"{s['name']} alone", "val_auc": s.get("val_auc"), "test_auc": s.get("test_auc"),
             **_difference(tests.get(s["name"]))}
            for s in baselines["sites"]
        ]  # fmt: skip
    return {
        "strategy": history.get("strategy", settings.get("strategy")),
        "planned_rounds": history.get("planned_rounds"),
        "local_epochs": settings.get("local-epochs"),
        "partition": settings.get("partition"),
        "rounds": rounds,
        "sites": sites,
        "comparison": comparison,
        "baseline_epochs": baselines.get("epochs") if baselines else None,
    }


def _difference(test: dict | None) -> dict:
    """Federated − this baseline on test with its paired bootstrap interval, and what it says."""
    if not test or test.get("diff") is None or test.get("ci_low") is None:
        return {}
    low, high = test["ci_low"], test["ci_high"]
    verdict = "federated better" if low > 0 else "federated worse" if high < 0 else "no measurable difference"
    return {"diff": test["diff"], "ci_low": low, "ci_high": high, "verdict": verdict}


def _weighted(clients: list[dict], key: str) -> float | None:
    pairs = [(c.get("num-examples", 1.0), c[key]) for c in clients if c.get(key) is not None]
    total = sum(w for w, _ in pairs)
    return sum(w * v for w, v in pairs) / total if total else None
