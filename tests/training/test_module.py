import math

import numpy as np
import pytest
import torch
from sklearn.metrics import log_loss, roc_auc_score

from radcnn.training.module import masked_bce_with_logits, mean_auc
from radcnn.training.precision import resolve_precision


def test_masked_bce_ignores_unknown_labels_and_matches_sklearn():
    logits = torch.tensor([[2.0, -1.0], [-0.5, 0.3], [0.1, 4.0]])
    targets = torch.tensor([[1.0, float("nan")], [0.0, 1.0], [1.0, float("nan")]])
    known_logits = np.array([2.0, -0.5, 0.1, 0.3])
    known_targets = np.array([1, 0, 1, 1])
    expected = log_loss(known_targets, 1 / (1 + np.exp(-known_logits)), labels=[0, 1])
    assert masked_bce_with_logits(logits, targets).item() == pytest.approx(expected, rel=1e-6)


def test_all_unknown_gives_zero_loss_with_gradient():
    logits = torch.zeros(2, 1, requires_grad=True)
    loss = masked_bce_with_logits(logits, torch.full((2, 1), float("nan")))
    loss.backward()
    assert loss.item() == 0.0 and logits.grad is not None


def test_mean_auc_skips_single_class_labels():
    y = np.array([[0, 1], [1, 1], [0, 1], [1, 1]], dtype=float)
    p = np.array([[0.1, 0.2], [0.8, 0.3], [0.4, 0.9], [0.7, 0.1]])
    assert mean_auc(y, p) == pytest.approx(roc_auc_score(y[:, 0], p[:, 0]))
    assert math.isnan(mean_auc(np.ones((3, 1)), np.ones((3, 1))))


def test_precision_choice():
    assert resolve_precision("32") == "32-true"
    assert resolve_precision("bf16") == "bf16-mixed"
    assert resolve_precision("auto") in ("32-true", "bf16-mixed")


def test_validation_loss_is_the_training_loss_with_its_pos_weight():
    import types

    import torch

    from radcnn.training.module import ClassifierModule

    net = torch.nn.Linear(4, 1)
    module = ClassifierModule(net, pos_weight=torch.tensor([3.0]))
    logged = {}
    module.log = lambda name, value, **kwargs: logged.__setitem__(name, float(value))
    module._trainer = types.SimpleNamespace(world_size=1)
    x = torch.randn(16, 4)
    y = (torch.arange(16) % 2).float()[:, None]
    module.validation_step((x, y), 0)
    module.on_validation_epoch_end()
    with torch.no_grad():
        expected = float(masked_bce_with_logits(net(x), y, torch.tensor([3.0])))
    assert logged["val_loss"] == pytest.approx(expected, rel=1e-6)


def test_progress_bar_counts_epochs_from_one():
    import types

    from radcnn.training.callbacks import EpochProgressBar

    bar = EpochProgressBar()
    bar._trainer = types.SimpleNamespace(max_epochs=10)
    assert bar._get_train_description(9).strip() == "Epoch 10/10"
