"""The task module: weights by name, FedProx's proximal term (by hand), model disagreement and empty clients."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from radcnn.data.loaders import ArraySplit
from radcnn.errors import DataError, ModelError
from radcnn.federated import task
from radcnn.federated.config import FederatedConfig
from radcnn.models.spec import ModelSpec

SPEC = ModelSpec(architecture="seed_cnn", input_size=(32, 32), label_names=("nodule",))


def test_weights_round_trip_by_name():
    a, b = task.new_model(SPEC, seed=0), task.new_model(SPEC, seed=1)
    assert any(not torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    task.set_weights(b, task.get_weights(a), source="test")
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name


def test_set_weights_names_the_tensor_that_does_not_fit():
    model = task.new_model(SPEC, seed=0)
    other = task.new_model(ModelSpec("seed_cnn", (32, 32), ("nodule", "consolidation")), seed=0)
    with pytest.raises(ModelError, match=r"the global model sent by the server: .*shape mismatch: .*\(file \(2,"):
        task.set_weights(model, task.get_weights(other), source="the global model sent by the server")


def test_check_spec_says_what_differs():
    local = ModelSpec("seed_cnn", (64, 64), ("consolidation",))
    with pytest.raises(ModelError, match=r"input_size: server \(32, 32\), client 2 \(site_c\) \(64, 64\); label_names"):
        task.check_spec(SPEC, local, where="client 2 (site_c)")
    task.check_spec(SPEC, SPEC, where="client 0")  # the same model passes


def test_proximal_term_is_added_by_hand():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1))
    module = task.ProximalModule(model, mu=0.5)
    plain = task.ProximalModule(model, mu=0.0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)  # move away from the anchor (the global weights when the module was made)
    n_params = sum(p.numel() for p in model.parameters())
    x, y = torch.ones(2, 1, 2, 2), torch.tensor([[1.0], [0.0]])
    module.log = plain.log = lambda *a, **k: None  # no Trainer attached
    expected = plain.training_step((x, y), 0).detach() + 0.5 * 0.5 * n_params * 0.1**2
    assert float(module.training_step((x, y), 0).detach()) == pytest.approx(float(expected), rel=1e-5)


def test_client_without_labelled_training_images_is_refused(fed_config, phantom):
    table = pd.read_csv(phantom)
    table["nodule"] = np.where(table["site"] == "site_b", "", table["nodule"].astype(str))
    unlabeled = phantom.with_name("labels_site_b_unlabelled.csv")
    table.to_csv(unlabeled, index=False)
    fed = FederatedConfig(data_source=str(unlabeled))
    config = task.load_run_config(fed.with_changes(config=str(fed_config)))
    with pytest.raises(DataError, match=r"client 1 \(site_b\) has no training images with known labels for nodule"):
        task.client_data(config, fed, 1, 3)
    assert len(task.client_data(config, fed, 0, 3).train) > 0


def test_evaluate_model_matches_sklearn():
    from sklearn.metrics import roc_auc_score

    model = task.new_model(SPEC, seed=0)
    rng = np.random.default_rng(0)
    images = rng.random((20, 1, 32, 32), dtype=np.float32)
    labels = (rng.random((20, 1)) < 0.5).astype(np.float32)
    labels[3] = np.nan
    split = ArraySplit(images, labels, pd.DataFrame({"path": [str(i) for i in range(20)]}))
    metrics = task.evaluate_model(model, split, SPEC)
    with torch.inference_mode():
        probs = torch.sigmoid(model.eval()(torch.from_numpy(images))).numpy()[:, 0]
    known = ~np.isnan(labels[:, 0])
    assert metrics["auc"] == pytest.approx(roc_auc_score(labels[known, 0], probs[known]))
    p = np.clip(probs[known], 1e-7, 1 - 1e-7)
    bce = -(labels[known, 0] * np.log(p) + (1 - labels[known, 0]) * np.log(1 - p)).mean()
    assert metrics["loss"] == pytest.approx(float(bce), rel=1e-5)
