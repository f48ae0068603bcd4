"""`MODELS` registry and `create_model`: every architecture is a tiny builder registered beside its definition."""

from __future__ import annotations

import importlib

from torch import nn

from radcnn.registry import Registry

MODELS: Registry = Registry("model")

# Modules whose import registers builders. Imported lazily so that `import radcnn` stays light.
_BUILDER_MODULES = ("radcnn.models.seed_cnn", "radcnn.models.monai_nets", "radcnn.models.classic")


def _load_builders() -> None:
    for module in _BUILDER_MODULES:
        importlib.import_module(module)


def create_model(name: str, *, in_channels: int = 1, num_outputs: int = 1, **kwargs) -> nn.Module:
    """Build a registered model; unknown names raise UnknownNameError listing the valid ones."""
    _load_builders()
    return MODELS.build(name, in_channels=in_channels, num_outputs=num_outputs, **kwargs)


def model_names() -> list[str]:
    _load_builders()
    return MODELS.names()


def neural_model_names() -> list[str]:
    """Registered networks trained by gradient descent (every model except the "classic" feature baselines)."""
    _load_builders()
    return [info.name for info in MODELS.infos() if "classic" not in info.tags]


def model_infos():
    _load_builders()
    return MODELS.infos()


def check_model_name(name: str) -> None:
    """Raise UnknownNameError (listing the valid names) before any expensive work is done."""
    _load_builders()
    MODELS.get(name)
