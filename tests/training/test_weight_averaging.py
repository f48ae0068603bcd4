"""Weight averaging (Lightning's EMAWeightAveraging) and fixed-schedule model selection, wired through `fit`."""

import json

import pytest
import torch
from lightning.pytorch.callbacks import EMAWeightAveraging

from radcnn.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from radcnn.errors import ConfigError
from radcnn.models.checkpoint import load_model
from radcnn.models.spec import ModelSpec
from radcnn.training import trainer as trainer_module
from radcnn.training.callbacks import BestModelExport
from radcnn.training.fit import fit


def _config(npz, **train):
    return RunConfig(
        data=DataConfig(source=str(npz), image_size=(28, 28)),
        model=ModelConfig(name="seed_cnn"),
        train=TrainConfig(epochs=2, batch_size=64, precision="32", progress_bar=False, **train),
    )


def test_ema_callback_runs_before_the_export(tmp_path):
    config = _config("x.npz", weight_averaging="ema", ema_decay=0.9, model_selection="last")
    trainer = trainer_module.build_trainer(config, tmp_path, ModelSpec("seed_cnn", (28, 28), ("a",)), "32")
    kinds = [type(c) for c in trainer.callbacks]
    assert kinds.index(EMAWeightAveraging) < kinds.index(BestModelExport)
    ema = next(c for c in trainer.callbacks if isinstance(c, EMAWeightAveraging))
    export = next(c for c in trainer.callbacks if isinstance(c, BestModelExport))
    assert export.selection == "last" and ema._kwargs["avg_fn"] is not None
    plain = trainer_module.build_trainer(_config("x.npz"), tmp_path, ModelSpec("seed_cnn", (28, 28), ("a",)), "32")
    assert not any(isinstance(c, EMAWeightAveraging) for c in plain.callbacks)


def test_bad_averaging_settings_are_config_errors():
    with pytest.raises(ConfigError, match="weight_averaging"):
        TrainConfig(weight_averaging="swa2")
    with pytest.raises(ConfigError, match="ema_decay"):
        TrainConfig(ema_decay=1.0)
    with pytest.raises(ConfigError, match="model_selection"):
        TrainConfig(model_selection="best_test")


def test_fit_saves_the_averaged_weights_of_the_last_epoch(tmp_path, small_npz, monkeypatch):
    seen = []
    original = trainer_module.build_trainer

    def keep(*args, **kwargs):
        trainer = original(*args, **kwargs)
        seen.append(trainer)
        return trainer

    monkeypatch.setattr("radcnn.training.fit.build_trainer", keep)
    config = _config(small_npz, weight_averaging="ema", ema_decay=0.9, model_selection="last", tta="flip")
    fit(config, tmp_path / "ema")
    best = json.loads((tmp_path / "ema" / "best.json").read_text())
    assert best["selection"] == "last" and best["epoch"] == 2
    ema = next(c for c in seen[0].callbacks if isinstance(c, EMAWeightAveraging))
    averaged = ema._average_model.module.model.state_dict()
    saved, spec = load_model(tmp_path / "ema" / "best_model.safetensors")
    assert spec.tta == "flip"
    for name, tensor in saved.state_dict().items():
        torch.testing.assert_close(tensor, averaged[name])

    fit(_config(small_npz, model_selection="last"), tmp_path / "plain")
    plain, _ = load_model(tmp_path / "plain" / "best_model.safetensors")
    weight = "classifier.3.weight"
    assert not torch.equal(plain.state_dict()[weight], saved.state_dict()[weight])
