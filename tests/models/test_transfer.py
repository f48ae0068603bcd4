"""Transfer learning: weights files made here (never downloaded) in torchvision, TorchXRayVision and radcnn formats."""

import functools
import re

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch.nn import functional as F

from radcnn.errors import ConfigError, ModelError, UnknownNameError
from radcnn.models.checkpoint import save_model
from radcnn.models.registry import create_model, neural_model_names
from radcnn.models.spec import ModelSpec
from radcnn.models.transfer import (
    HEADS,
    freeze_backbone,
    initialise_from,
    parameter_groups,
    split_backbone_head,
)


def _model(name, *, seed=0, **kw):
    kw.setdefault("input_size", (32, 32))
    with torch.random.fork_rng():  # never touch the global RNG other tests rely on
        torch.manual_seed(seed)
        return create_model(name, **kw)


def torchvision_state(arch, *, in_channels=3, num_outputs=1000, legacy=False, seed=1):
    """A state dict with torchvision's names and shapes, random values.

    Made from MONAI's module tree mapped back to torchvision's names: DenseNet drops MONAI's `.layers` and calls the
    head `classifier` (legacy files spell `norm1` as `norm.1`); ResNet's downsample conv has no bias in torchvision.
    """
    state = _torchvision_state(arch, in_channels, num_outputs, seed)
    if legacy:
        return {re.sub(r"(denselayer\d+)\.(norm|relu|conv)([12])\.", r"\1.\2.\3.", k): v for k, v in state.items()}
    return dict(state)  # a copy the caller may extend


@functools.cache  # building DenseNet-121 costs seconds on this machine; build each variant once
def _torchvision_state(arch, in_channels, num_outputs, seed):
    model = _model(arch, in_channels=in_channels, num_outputs=num_outputs)
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name, tensor in model.state_dict().items():
        if re.fullmatch(r"layer\d+\.\d+\.downsample\.0\.bias", name):
            continue
        name = name.replace(".layers.", ".").replace("class_layers.out.", "classifier.")
        if not tensor.is_floating_point():
            state[name] = torch.tensor(7)  # num_batches_tracked
        elif name.endswith("running_var"):
            state[name] = 50.0 + torch.rand(tensor.shape, generator=generator)
        else:
            state[name] = torch.randn(tensor.shape, generator=generator)
    return state


def test_fake_torchvision_layouts_match_torchvision():
    """Hand-checked facts about torchvision's files, so the fakes below are not just our own mapping reversed."""
    resnet = torchvision_state("resnet18")
    assert len(resnet) == 122  # len(torchvision.models.resnet18().state_dict())
    assert resnet["conv1.weight"].shape == (64, 3, 7, 7) and resnet["fc.weight"].shape == (1000, 512)
    assert resnet["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1)
    assert not any("downsample.0.bias" in k for k in resnet)
    dense = torchvision_state("densenet121")
    assert len(dense) == 727  # len(torchvision.models.densenet121().state_dict())
    assert dense["features.conv0.weight"].shape == (64, 3, 7, 7)
    assert dense["features.denseblock1.denselayer1.norm1.weight"].shape == (64,)
    assert dense["features.denseblock1.denselayer1.conv2.weight"].shape == (32, 128, 3, 3)
    assert dense["features.transition1.conv.weight"].shape == (128, 256, 1, 1)
    assert dense["classifier.weight"].shape == (1000, 1024)


def test_torchvision_resnet18_sums_rgb_skips_head_and_loads_the_rest(tmp_path):
    state = torchvision_state("resnet18")
    torch.save(state, tmp_path / "resnet18-imagenet.pth")
    model = _model("resnet18")
    report = initialise_from(model, "resnet18", tmp_path / "resnet18-imagenet.pth")

    assert report.source == "torchvision"
    own = model.state_dict()
    assert torch.equal(own["conv1.weight"], state["conv1.weight"].sum(dim=1, keepdim=True))
    assert dict(report.skipped) == {"fc.weight": "head: 1000 outputs vs 1", "fc.bias": "head: 1000 outputs vs 1"}
    assert report.missing == ("fc.weight", "fc.bias")
    biases = [k for k in own if "downsample.0.bias" in k]
    assert len(biases) == 3 and all(torch.count_nonzero(own[k]) == 0 for k in biases)
    assert set(dict(report.adapted)) == {"conv1.weight", *biases}
    assert len(report.loaded) == 122 - 3  # all but conv1 (adapted) and the two head tensors
    for name in report.loaded:
        assert torch.equal(own[name], state[name].to(own[name].dtype)), name
    # Why the sum: the grey image x has the same response as the RGB image (x, x, x) under the original kernels.
    x = torch.rand(2, 1, 16, 16)
    rgb_response = F.conv2d(x.repeat(1, 3, 1, 1), state["conv1.weight"], stride=1, padding=3)
    torch.testing.assert_close(model.conv1(x), rgb_response, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("legacy", [False, True], ids=["norm1-names", "legacy-norm.1-names"])
def test_torchvision_densenet121_maps_monai_names(tmp_path, legacy):
    state = torchvision_state("densenet121", legacy=legacy)
    torch.save(state, tmp_path / "densenet121.pth")
    model = _model("densenet121")
    report = initialise_from(model, "densenet121", tmp_path / "densenet121.pth", source="torchvision")

    own = model.state_dict()
    assert torch.equal(own["features.conv0.weight"], state["features.conv0.weight"].sum(dim=1, keepdim=True))
    assert dict(report.adapted).keys() == {"features.conv0.weight"}
    assert dict(report.skipped) == {
        "classifier.weight": "head: 1000 outputs vs 1",
        "classifier.bias": "head: 1000 outputs vs 1",
    }
    assert report.missing == ("class_layers.out.weight", "class_layers.out.bias")
    assert len(report.loaded) == 727 - 3
    layer = "features.denseblock3.denselayer7.{}conv2.weight"
    file_name = layer.format("") if not legacy else "features.denseblock3.denselayer7.conv.2.weight"
    assert torch.equal(own[layer.format("layers.")], state[file_name])
    assert all(
        torch.equal(own[n], state[n]) for n in ("features.norm5.running_var", "features.transition2.conv.weight")
    )


def test_torchxrayvision_densenet_loads_head_and_folds_intensity_range(tmp_path):
    state = torchvision_state("densenet121", in_channels=1, num_outputs=18)
    state["op_threshs"] = torch.rand(18)  # an extra tensor some TorchXRayVision state dicts carry
    torch.save(state, tmp_path / "densenet121-res224-all.pt")
    model = _model("densenet121", num_outputs=18)
    report = initialise_from(model, "densenet121", tmp_path / "densenet121-res224-all.pt")

    assert report.source == "torchxrayvision"
    assert dict(report.adapted).keys() == {"features.norm0.running_mean", "features.norm0.running_var"}
    assert report.skipped == (("op_threshs", "not in the model"),) and report.missing == ()
    own = model.state_dict()
    assert torch.equal(own["class_layers.out.weight"], state["classifier.weight"])
    # In eval mode the stem on [0, 1] input equals TorchXRayVision's stem on its own [-1024, 1024] input
    # (away from the zero-padded border, where "0" means black here and mid-grey there), computed from the file.
    x = torch.rand(2, 1, 40, 40)
    model.eval()
    with torch.no_grad():
        ours = model.features[:3](x)  # conv0, norm0, relu0
        theirs = F.conv2d(2048.0 * x - 1024.0, state["features.conv0.weight"], stride=2, padding=3)
        stats = [state[f"features.norm0.{k}"] for k in ("running_mean", "running_var", "weight", "bias")]
        theirs = F.relu(F.batch_norm(theirs, *stats, training=False, eps=1e-5))
    torch.testing.assert_close(ours[..., 2:-2, 2:-2], theirs[..., 2:-2, 2:-2], rtol=1e-4, atol=1e-3)

    one_output = _model("densenet121")
    plain = initialise_from(one_output, "densenet121", tmp_path / "densenet121-res224-all.pt", adapt_intensity=False)
    assert plain.adapted == () and len(plain.loaded) == 727 - 2
    assert dict(plain.skipped)["classifier.weight"] == "head: 18 outputs vs 1"
    # A running variance too small to rescale exactly is clamped at 0, and the report says so.
    state["features.norm0.running_var"] = state["features.norm0.running_var"].clone()
    state["features.norm0.running_var"][:2] = 1.0
    torch.save(state, tmp_path / "small_var.pt")
    report = initialise_from(one_output, "densenet121", tmp_path / "small_var.pt")
    assert "2 channels clamped at 0: approximate" in dict(report.adapted)["features.norm0.running_var"]
    assert torch.count_nonzero(one_output.features.norm0.running_var[:2]) == 0


# --- pretrain on one synthetic site, fine-tune on another -------------------------------------------------------
SIDE = 24


def synthetic_site(n, rng, *, gamma, noise):
    """Positives hold a small bright blob, negatives a wide dim one of about the same total brightness (so the mean
    intensity gives nothing away); a site is its gamma and noise level."""
    yy, xx = np.mgrid[:SIDE, :SIDE].astype(np.float32)
    labels = np.arange(n) % 2 == 0
    rng.shuffle(labels)
    images = np.empty((n, SIDE, SIDE), np.float32)
    for i, positive in enumerate(labels):
        image = np.full((SIDE, SIDE), 0.3 + 0.2 * rng.random(), np.float32)
        cy, cx = rng.uniform(5, SIDE - 5, 2)
        radius = rng.uniform(1.5, 2.5) if positive else rng.uniform(4.0, 5.5)
        amplitude = 0.4 if positive else 0.4 * (2.0 / radius) ** 2
        image += amplitude * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius**2))
        image += noise * rng.standard_normal((SIDE, SIDE)).astype(np.float32)
        images[i] = np.clip(image, 0, 1) ** gamma
    return torch.from_numpy(images[:, None]), torch.from_numpy(labels.astype(np.float32)[:, None])


def plain_train(model, groups, x, y, *, steps, seed):
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(groups)
    model.train()
    for _ in range(steps):
        batch = torch.randperm(len(x), generator=generator)[:32]
        loss = F.binary_cross_entropy_with_logits(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def auc(model, x, y):
    model.eval()
    with torch.no_grad():
        return roc_auc_score(y[:, 0].numpy(), model(x)[:, 0].numpy())


@pytest.fixture
def one_thread():
    """A model this small trains fastest on one thread; two threads on a busy 2-core machine are several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_pretrain_on_site_a_fine_tune_on_site_b_beats_training_from_scratch(tmp_path, one_thread):
    rng = np.random.default_rng(0)
    site_a, site_b = dict(gamma=1.0, noise=0.1), dict(gamma=2.0, noise=0.15)
    x_a, y_a = synthetic_site(1024, rng, **site_a)
    x_b, y_b = synthetic_site(8, rng, **site_b)  # a few labelled images from the new site
    x_test, y_test = synthetic_site(400, rng, **site_b)

    pretrained = _model("seed_cnn", input_size=(SIDE, SIDE), seed=0)
    plain_train(pretrained, [{"params": pretrained.parameters(), "lr": 1e-3}], x_a, y_a, steps=150, seed=0)
    spec = ModelSpec(architecture="seed_cnn", input_size=(SIDE, SIDE), label_names=("blob",))
    path = save_model(pretrained, spec, tmp_path / "site_a.safetensors")

    transferred = _model("seed_cnn", input_size=(SIDE, SIDE), seed=1)
    report = initialise_from(transferred, "seed_cnn", path)
    assert report.source == "radcnn" and report.complete
    assert set(report.loaded) == set(transferred.state_dict())
    freeze_backbone(transferred, "seed_cnn")
    backbone, head = split_backbone_head(transferred, "seed_cnn")
    backbone_before = [p.detach().clone() for p in backbone]
    head_before = [p.detach().clone() for p in head]
    groups = parameter_groups(transferred, "seed_cnn", lr=1e-3, backbone_lr_scale=0.1)
    assert [g["name"] for g in groups] == ["head"]  # the frozen backbone has nothing to train
    plain_train(transferred, groups, x_b, y_b, steps=40, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(backbone, backbone_before, strict=True))
    assert all(not torch.equal(a, b) for a, b in zip(head, head_before, strict=True))

    scratch = _model("seed_cnn", input_size=(SIDE, SIDE), seed=2)
    plain_train(scratch, [{"params": scratch.parameters(), "lr": 1e-3}], x_b, y_b, steps=40, seed=0)
    auc_transferred, auc_scratch = auc(transferred, x_test, y_test), auc(scratch, x_test, y_test)
    # This seed: 0.994 vs 0.658. Over data/model seeds 0-11: transferred 0.990-0.998, scratch 0.60-0.91, gap ≥ 0.088.
    assert auc_transferred >= 0.95
    assert auc_transferred >= auc_scratch + 0.05, (auc_transferred, auc_scratch)


# --- files that do not fit or cannot be read safely -------------------------------------------------------------
def test_resnet18_weights_do_not_fit_resnet50_and_the_tensors_are_named(tmp_path):
    torch.save(torchvision_state("resnet18"), tmp_path / "r18.pth")
    with pytest.raises(ModelError, match=r"do not fit resnet50 .*layer1\.0\.conv1\.weight \(shape \(64, 64, 3, 3\)"):
        initialise_from(_model("resnet50"), "resnet50", tmp_path / "r18.pth")
    partial = initialise_from(_model("resnet50"), "resnet50", tmp_path / "r18.pth", allow_partial=True)
    assert "conv1.weight" in dict(partial.adapted) and "layer1.0.conv3.weight" in partial.missing
    assert dict(partial.skipped)["layer1.0.conv1.weight"].startswith("shape (64, 64, 3, 3) in file")


def test_a_file_where_nothing_fits_names_the_tensors(tmp_path):
    torch.save({"features.0.weight": torch.zeros(5, 2, 5, 5)}, tmp_path / "odd.pt")
    with pytest.raises(ModelError, match=r"no tensor of this file fits seed_cnn — features\.0\.weight \(shape"):
        initialise_from(_model("seed_cnn"), "seed_cnn", tmp_path / "odd.pt", source="radcnn")


def test_wrong_architecture_source_and_format_are_refused(tmp_path):
    seed = _model("seed_cnn")
    path = save_model(seed, ModelSpec("seed_cnn", (32, 32), ("x",)), tmp_path / "seed.safetensors")
    with pytest.raises(ModelError, match="holds a seed_cnn model; it cannot initialise a resnet18"):
        initialise_from(_model("resnet18"), "resnet18", path)
    torch.save(torchvision_state("resnet18"), tmp_path / "r18.pth")
    with pytest.raises(ModelError, match="torchxrayvision weights can initialise densenet121, not resnet18"):
        initialise_from(_model("resnet18"), "resnet18", tmp_path / "r18.pth", source="torchxrayvision")
    torch.save({"encoder.block.weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ModelError, match="cannot tell the format"):
        initialise_from(seed, "seed_cnn", tmp_path / "other.pt")
    with pytest.raises(UnknownNameError, match="torchvision"):
        initialise_from(seed, "seed_cnn", path, source="timm")
    with pytest.raises(ModelError, match="does not look like a densenet121"):
        initialise_from(seed, "densenet121", path)


class _RunsCodeWhenUnpickled:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))  # unpickling would create the marker file


def test_a_file_that_needs_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code-ran"
    torch.save({"weight": _RunsCodeWhenUnpickled(marker)}, tmp_path / "evil.pt")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "whole_model.pt")  # how TorchXRayVision publishes its weights
    for name in ("evil.pt", "whole_model.pt"):
        with pytest.raises(ModelError, match="needs Python's pickle .* never unpickles"):
            initialise_from(_model("seed_cnn"), "seed_cnn", tmp_path / name)
    assert not marker.exists()
    (tmp_path / "junk.pt").write_bytes(b"not weights at all")
    with pytest.raises(ModelError, match="not a readable weights file"):
        initialise_from(_model("seed_cnn"), "seed_cnn", tmp_path / "junk.pt")
    with pytest.raises(ModelError, match="not found"):
        initialise_from(_model("seed_cnn"), "seed_cnn", tmp_path / "absent.pt")


def test_nested_data_parallel_state_dict_and_new_head(tmp_path):
    source = _model("seed_cnn", seed=3, num_outputs=3)
    nested = {"epoch": 4, "state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}
    torch.save(nested, tmp_path / "ckpt.pt")
    model = _model("seed_cnn", seed=4)
    report = initialise_from(model, "seed_cnn", tmp_path / "ckpt.pt")
    assert report.source == "radcnn" and "'module.' prefix removed" in report.notes[0]
    assert report.missing == ("classifier.3.weight", "classifier.3.bias")
    assert dict(report.skipped)["classifier.3.bias"] == "head: 3 outputs vs 1"
    assert torch.equal(model.features[0].weight, source.features[0].weight)
    summary = report.summary()
    assert "8 tensors loaded" in summary and "2 left at initialisation" in summary
    assert report.to_dict()["counts"] == {"loaded": 8, "adapted": 0, "skipped": 2, "missing": 2}


def test_safetensors_state_dict_without_spec_and_half_precision(tmp_path):
    from safetensors.torch import save_file

    source = _model("seed_cnn", seed=5)
    save_file({k: v.half() for k, v in source.state_dict().items()}, str(tmp_path / "half.safetensors"))
    model = _model("seed_cnn", seed=6)
    report = initialise_from(model, "seed_cnn", tmp_path / "half.safetensors")
    assert report.source == "radcnn" and report.loaded == () and report.missing == () and report.skipped == ()
    assert set(dict(report.adapted).values()) == {"cast float16 → float32"}
    assert model.classifier[3].weight.dtype == torch.float32
    torch.testing.assert_close(model.classifier[3].weight, source.classifier[3].weight, rtol=1e-3, atol=1e-3)


# --- backbone / head split over every registered model -----------------------------------------------------------
@pytest.mark.parametrize("name", neural_model_names())
def test_split_freeze_and_parameter_groups(name):
    model = _model(name)
    backbone, head = split_backbone_head(model, name)
    assert backbone and head
    assert {id(p) for p in backbone} | {id(p) for p in head} == {id(p) for p in model.parameters()}
    assert not {id(p) for p in backbone} & {id(p) for p in head}
    head_module = dict(model.named_modules())[HEADS[name][0]]
    assert {id(p) for p in head} == {id(p) for p in head_module.parameters()}

    groups = parameter_groups(model, name, lr=1e-3, backbone_lr_scale=0.1)
    assert [(g["name"], g["lr"], len(g["params"])) for g in groups] == [
        ("backbone", pytest.approx(1e-4), len(backbone)),
        ("head", 1e-3, len(head)),
    ]
    assert freeze_backbone(model, name) == sum(p.numel() for p in backbone)
    assert not any(p.requires_grad for p in backbone) and all(p.requires_grad for p in head)
    assert [g["name"] for g in parameter_groups(model, name, lr=1e-3, backbone_lr_scale=0.1)] == ["head"]
    freeze_backbone(model, name, frozen=False)
    assert all(p.requires_grad for p in model.parameters())


def test_parameter_groups_validate_the_scale():
    model = _model("seed_cnn")
    assert [g["name"] for g in parameter_groups(model, "seed_cnn", 1e-3, 0.0)] == ["head"]
    for bad in (-0.1, float("nan")):
        with pytest.raises(ConfigError, match="backbone_lr_scale"):
            parameter_groups(model, "seed_cnn", 1e-3, bad)
