"""Flower's simulation engine end to end on a tiny phantom: three sites as three clients. The run directory is a
normal radcnn run (`radcnn predict` and `evaluate` read it), carries per-round history and the partition report,
resumes from its last round, and survives a client that dies mid-round, one that sends NaN weights and one that
disagrees with the server on the model."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("flwr")

pytestmark = pytest.mark.slow  # Flower's engines and real training: a minute or two each
pytest.importorskip("ray")

from radcnn.cli.app import main  # noqa: E402
from radcnn.errors import ConfigError  # noqa: E402
from radcnn.federated.config import FederatedConfig  # noqa: E402
from radcnn.federated.simulate import simulate  # noqa: E402
from radcnn.runs import (  # noqa: E402
    FEDERATED_BASELINES,
    FEDERATED_HISTORY,
    FEDERATED_PARTITIONS,
    GLOBAL_MODEL,
    SERVER_OPTIMIZER,
    RunDir,
    partial_dir,
)

# One Ray actor per client: an actor that dies takes every task queued on it along, so the dying client must not
# share its actor with another (four logical CPUs for four clients; Ray does not pin them to cores).
BACKEND = {
    "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
    "init_args": {"num_cpus": 4, "include_dashboard": False},
}


def test_simulation_writes_a_radcnn_run_and_resumes(fed_config, phantom, tmp_path, capsys):
    out = tmp_path / "fed"
    fed = FederatedConfig(config=str(fed_config), run_dir=str(out), num_server_rounds=1, strategy="fedprox",
                          proximal_mu=0.1)  # fmt: skip
    result = simulate(fed)
    assert result.num_clients == 3 and result.rounds == 1

    run = RunDir.open(out)
    history = run.read_json(FEDERATED_HISTORY)
    first = history["rounds"][0]
    assert first["round"] == 1 and first["accepted"] == 3 and first["rejected"] == [] and first["aggregated"]
    assert sorted(c["name"] for c in first["clients"]) == ["site_a", "site_b", "site_c"]
    assert all("proximal_term" in c for c in first["clients"])  # FedProx's term was in every client's loss
    assert sorted(c["name"] for c in first["client_evaluation"]) == ["site_a", "site_b", "site_c"]
    table = pd.read_csv(phantom)
    partitions = run.read_json(FEDERATED_PARTITIONS)["clients"]
    assert sum(sum(s["images"] for s in c["splits"].values()) for c in partitions) == len(table)
    for client in partitions:
        assert sum(s["images"] for s in client["splits"].values()) == int((table["site"] == client["name"]).sum())
    # the clients trained on exactly their partition's training images
    trained = {c["name"]: c["num-examples"] for c in first["clients"]}
    assert trained == {c["name"]: c["splits"]["train"]["images"] for c in partitions}
    assert run.best()["round"] == 1 and run.has(GLOBAL_MODEL)

    # resume: the finished round-1 run as if interrupted, continued to 2 rounds; round 1 is kept as it was
    shutil.move(out, partial_dir(out))
    resumed = simulate(FederatedConfig(run_dir=str(out), resume=True, num_server_rounds=2, strategy="fedprox",
                                       proximal_mu=0.1))  # fmt: skip
    assert resumed.rounds == 2
    history = RunDir.open(out).read_json(FEDERATED_HISTORY)
    assert [r["round"] for r in history["rounds"]] == [1, 2] and history["rounds"][0] == first
    assert json.loads(RunDir(out).file("run.json").read_text())["resumed"] == 1

    # the global model is an ordinary radcnn model: `radcnn predict` loads it
    image = phantom.parent / table["path"].iloc[0]
    assert main(["predict", str(out), str(image), "--format", "json"]) == 0
    assert "nodule" in capsys.readouterr().out

    # baselines (centralised, each site alone: 2 rounds × 1 epoch = 2 epochs) and `radcnn report` on the run
    assert main(["federated", "baselines", str(out)]) == 0
    baselines = RunDir(out).read_json(FEDERATED_BASELINES)
    assert baselines["epochs"] == 2 and [s["name"] for s in baselines["sites"]] == ["site_a", "site_b", "site_c"]
    assert baselines["centralised"]["train_images"] == sum(s["train_images"] for s in baselines["sites"])
    assert main(["report", str(out), "--bootstrap", "0", "--no-explain"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert [r["round"] for r in report["federated"]["rounds"]] == [1, 2]
    assert len(report["federated"]["comparison"]) == 5
    html = (out / "report.html").read_text()
    assert "Federated learning" in html and "site_b alone" in html


def test_dying_nan_and_mismatched_clients_are_left_out_and_the_round_completes(fed_config, tmp_path, monkeypatch):
    from flwr.simulation import run_simulation

    here = str(Path(__file__).parent)
    monkeypatch.syspath_prepend(here)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]))  # Ray's workers
    import faulty_client

    from radcnn.federated.server_app import make_server_app

    out = tmp_path / "faulty"
    fed = FederatedConfig(config=str(fed_config), run_dir=str(out), num_server_rounds=1, min_train_nodes=1,
                          min_evaluate_nodes=1, num_partitions=3, strategy="fedadam")  # fmt: skip
    run_simulation(server_app=make_server_app(fed.to_record()), client_app=faulty_client.app, num_supernodes=4,
                   backend_config=BACKEND)  # fmt: skip
    entry = RunDir.open(out).read_json(FEDERATED_HISTORY)["rounds"][0]
    assert entry["replies"] == 4 and entry["accepted"] == 1 and entry["aggregated"]
    assert [c["name"] for c in entry["clients"]] == ["site_a"]
    reasons = " | ".join(r["reason"] for r in entry["rejected"])
    assert "died" in reasons  # the Ray worker of client 1 exited mid-round
    assert "contains NaN" in reasons  # client 2's update was refused, not averaged
    assert "weights do not match the global model" in reasons  # client 3 disagrees with the server on the model
    # FedAdam's moments are kept beside the global model (what a resume restores), finite: no NaN got in
    from safetensors.numpy import load_file

    moments = load_file(RunDir(out).file(SERVER_OPTIMIZER))
    model_tensors = {k for k, v in load_file(RunDir(out).file(GLOBAL_MODEL)).items()}
    assert {k.split("/", 1)[1] for k in moments} <= model_tensors and {k.split("/")[0] for k in moments} == {
        "m_t",
        "v_t",
    }
    assert all(np.isfinite(v).all() for v in moments.values())


def test_waiting_for_more_clients_than_will_run_is_refused(fed_config, tmp_path):
    fed = FederatedConfig(config=str(fed_config), run_dir=str(tmp_path / "x"), min_available_nodes=4)
    with pytest.raises(ConfigError, match="min-available-nodes is 4 but only 3 clients will run"):
        simulate(fed)
    assert not (tmp_path / "x").exists()
