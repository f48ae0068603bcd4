"""Training end to end on real PneumoniaMNIST images (28×28) from ../shared/data."""

from pathlib import Path

import pytest
import torch

from radcnn.config import DataConfig, RunConfig, TrainConfig
from radcnn.errors import RunDirectoryError
from radcnn.models.checkpoint import load_model
from radcnn.reporting.evaluate_run import evaluate_run
from radcnn.training.fit import fit

NPZ = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "pneumoniamnist_dev.npz"


def _config(epochs=4, seed=0, source=NPZ):
    return RunConfig(
        data=DataConfig(source=str(source), image_size=(28, 28), label_columns=("pneumonia",)),
        train=TrainConfig(epochs=epochs, seed=seed, progress_bar=False),
    )


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    if not NPZ.is_file():
        pytest.fail(f"{NPZ} is missing: the shared data folder must sit beside the repository")
    run = tmp_path_factory.mktemp("runs") / "pmnist"
    return fit(_config(), run), run


@pytest.mark.slow
def test_seed_cnn_on_pneumoniamnist_reaches_test_auc_090(trained_run):
    result, run = trained_run
    evaluation = evaluate_run(run, n_boot=200)
    metrics = evaluation.metrics["labels"]["pneumonia"]["metrics"]
    assert metrics["roc_auc"] >= 0.90
    assert evaluation.metrics["n_images"] == 600
    for name in ("config.yaml", "split.csv", "best_model.safetensors", "logs/metrics.csv", "metrics.json"):
        assert (run / name).is_file(), name
    assert any((run / "logs").glob("events.out.tfevents.*"))


def test_best_model_is_the_best_validation_epoch_and_carries_a_val_threshold(trained_run):
    import pandas as pd

    result, run = trained_run
    log = pd.read_csv(run / "logs" / "metrics.csv").dropna(subset=["val_auc"]).reset_index(drop=True)
    assert result.best_val_auc == pytest.approx(log["val_auc"].max())
    assert result.best_epoch == int(log["val_auc"].idxmax()) + 1
    model, spec = load_model(run / "best_model.safetensors")
    assert spec.threshold_method == "youden on val" and 0 < spec.thresholds[0] < 1
    assert spec.input_size == (28, 28) and spec.label_names == ("pneumonia",)


def test_same_seed_gives_the_same_model(tmp_path, small_npz):
    a = fit(_config(epochs=1, seed=5, source=small_npz), tmp_path / "a")
    b = fit(_config(epochs=1, seed=5, source=small_npz), tmp_path / "b")
    wa = load_model(a.run_dir / "best_model.safetensors")[0].state_dict()
    wb = load_model(b.run_dir / "best_model.safetensors")[0].state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_existing_run_is_refused_and_left_untouched(tmp_path, small_npz):
    run = tmp_path / "run"
    run.mkdir()
    (run / "keep.txt").write_text("precious")
    with pytest.raises(RunDirectoryError, match="already exists"):
        fit(_config(epochs=1, source=small_npz), run)
    assert (run / "keep.txt").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no temporary folders left behind


def test_failed_training_leaves_no_partial_run(tmp_path, monkeypatch, small_npz):
    from radcnn.training import fit as fit_module

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(fit_module, "_choose_thresholds", explode)
    with pytest.raises(RuntimeError):
        fit(_config(epochs=1, source=small_npz), tmp_path / "run")
    assert not (tmp_path / "run").exists()  # only the resumable partial folder may remain
