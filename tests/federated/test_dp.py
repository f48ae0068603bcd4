"""DP-SGD on every federated client (Opacus through radcnn.training.dp): the noise is planned once for the whole
run, ε accumulates over rounds (checked against a fresh Opacus accountant), stays within the target, and the
global model — GroupNorm instead of BatchNorm on server and clients — loads with `radcnn predict`. Settings DP-SGD
cannot honour and unreachable targets are one ConfigError before anything trains."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("flwr")
pytest.importorskip("opacus")

from radcnn.errors import ConfigError  # noqa: E402
from radcnn.federated.config import FederatedConfig  # noqa: E402
from radcnn.federated.privacy import plan_client  # noqa: E402
from radcnn.runs import FEDERATED_HISTORY, PRIVACY, RunDir  # noqa: E402


@pytest.fixture(scope="module")
def small_phantom(tmp_path_factory) -> Path:
    """30 phantom patients (about 75 images, 32 px) at three sites: per-sample gradients of a ResNet-18 are the
    cost of this file, so it gets half the shared phantom."""
    from radcnn.phantom.synth import synthesize_dataset

    root = tmp_path_factory.mktemp("fed-dp-phantom") / "data"
    return synthesize_dataset(root, n_patients=30, size=32, fmt="png", seed=5).csv_path


@pytest.fixture(scope="module")
def resnet_config(small_phantom: Path, tmp_path_factory) -> Path:
    """MONAI ResNet-18 (it has BatchNorm, which DP-SGD must replace) on the small phantom."""
    path = tmp_path_factory.mktemp("fed-dp") / "fed-resnet.yaml"
    path.write_text(
        f"""data:
  source: {small_phantom}
  image_size: [32, 32]
  label_columns: [nodule]
model:
  name: resnet18
train:
  epochs: 1
  batch_size: 16
  precision: "32"
  progress_bar: false
""",
        encoding="utf-8",
    )
    return path


def _prv_epsilon(sigma: float, q: float, steps: int, delta: float) -> float:
    from opacus.accountants import PRVAccountant

    accountant = PRVAccountant()
    accountant.history = [(sigma, q, steps)]
    return accountant.get_epsilon(delta=delta)


def test_plan_matches_opacus_and_spends_the_target_over_the_whole_run():
    from opacus.accountants.utils import get_noise_multiplier

    fed = FederatedConfig(num_server_rounds=3, local_epochs=2, dp_epsilon=4.0)
    plan = plan_client("site_a", 100, 16, fed)
    assert plan.batches_per_epoch == 7 and plan.steps_per_round == 14 and plan.delta == pytest.approx(0.01)
    sigma = get_noise_multiplier(target_epsilon=4.0, target_delta=0.01, sample_rate=1 / 7, epochs=6, accountant="prv")
    assert plan.noise_multiplier == pytest.approx(sigma)
    spent = [plan.epsilon_after_round(r) for r in (1, 2, 3)]
    assert spent[0] < spent[1] < spent[2] <= 4.0 and spent[2] > 3.95  # the planned run spends the target
    assert spent[1] == pytest.approx(_prv_epsilon(sigma, 1 / 7, 28, 0.01))
    # planning for one round only would have spent the whole budget in round 1 (the restart bug this prevents)
    one_round = plan_client("site_a", 100, 16, FederatedConfig(num_server_rounds=1, local_epochs=2, dp_epsilon=4.0))
    assert one_round.noise_multiplier < plan.noise_multiplier


def test_unreachable_epsilon_and_fedprox_are_refused_before_anything_runs(fed_config, tmp_path):
    from radcnn.federated.simulate import simulate

    out = tmp_path / "never"
    fed = FederatedConfig(config=str(fed_config), run_dir=str(out), num_server_rounds=50, dp_epsilon=1e-6,
                           dp_delta=1e-5)  # fmt: skip
    with pytest.raises(ConfigError, match=r"dp-epsilon 1e-06 at δ = 1e-05 cannot be reached by client site_a"):
        simulate(fed)
    with pytest.raises(ConfigError, match="fedprox.*proximal term"):
        simulate(fed.with_changes(dp_epsilon=8.0, strategy="fedprox"))
    assert not out.exists() and not list(tmp_path.glob(".*never*"))


@pytest.mark.slow
def test_dp_simulation_accounts_epsilon_per_round_and_the_model_loads(resnet_config, small_phantom, tmp_path, capsys):
    from radcnn.cli.app import main
    from radcnn.federated.simulate import simulate
    from radcnn.models.checkpoint import load_model
    from radcnn.reporting.model_card import privacy_statement

    out = tmp_path / "fed-dp"
    result = simulate(FederatedConfig(config=str(resnet_config), run_dir=str(out), num_server_rounds=2,
                                      dp_epsilon=8.0))  # fmt: skip
    assert result.rounds == 2
    run = RunDir.open(out)
    rounds = run.read_json(FEDERATED_HISTORY)["rounds"]
    spent = [r["dp_epsilon"] for r in rounds]
    assert 0 < spent[0] < spent[1] <= 8.0 and spent[1] > 7.9  # cumulative, not restarted per round
    privacy = run.read_json(PRIVACY)
    plans = {c["name"]: c for c in privacy["clients"]}
    for entry in rounds:
        assert {c["name"] for c in entry["clients"]} == set(plans)
        for client in entry["clients"]:
            plan = plans[client["name"]]
            # every client trained with the σ planned for the whole run, and reports ε of all its steps so far
            assert client["dp_noise_multiplier"] == pytest.approx(plan["noise_multiplier"])
            steps = entry["round"] * plan["steps_per_round"]
            assert client["dp_epsilon"] == pytest.approx(
                _prv_epsilon(plan["noise_multiplier"], plan["sample_rate"], steps, plan["delta"]), rel=1e-6
            )
            assert client["dp_round_epsilon"] < client["dp_epsilon"] or entry["round"] == 1
        assert entry["dp_epsilon"] == max(c["dp_epsilon"] for c in entry["clients"])
    assert [e["epsilon"] for e in privacy["epsilon_per_epoch"]] == spent
    assert privacy["epsilon_spent"] == spent[-1] and privacy["target_epsilon"] == 8.0
    assert privacy["selected_epoch_epsilon"] == spent[run.best()["round"] - 1]
    assert any("BatchNorm2d 'bn1' → GroupNorm" in change for change in privacy["model_changes"])
    assert "ε = 8.00 spent" in privacy_statement(privacy) or "ε = 7.99 spent" in privacy_statement(privacy)

    # the server's global model is the clients' fixed model: GroupNorm, no BatchNorm, and `radcnn predict` loads it
    model, spec = load_model(run.file("best_model.safetensors"))
    kinds = {type(m).__name__ for m in model.modules()}
    assert spec.model_kwargs.get("norm") == "group" and "GroupNorm" in kinds and "BatchNorm2d" not in kinds
    table = pd.read_csv(small_phantom)
    assert main(["predict", str(out), str(small_phantom.parent / table["path"].iloc[0]), "--format", "json"]) == 0
    printed = capsys.readouterr().out
    rows = json.loads(printed[printed.index("[") : printed.rindex("]") + 1])
    assert len(rows) == 1 and 0 <= rows[0]["nodule_probability"] <= 1
