"""The registry of dataset layouts: a name → loader mapping, plus detection of a layout from a folder or file.

Every loader has the signature ``load(source, *, on_error="fail", check_files=True, **layout_options) -> Manifest``
and is registered with a ``detect(path) -> bool`` test and a detection ``priority`` (lower runs first: the specific
public layouts before the generic CSV and folder-per-class ones, which would otherwise claim everything).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from radcnn.data.manifest import Manifest
from radcnn.encryption.files import stored_file
from radcnn.errors import ConfigError, DataError
from radcnn.registry import EntryInfo, Registry

LAYOUTS: Registry[Callable[..., Manifest]] = Registry("dataset layout")


def load_layout(name: str, source: str | Path, **options: Any) -> Manifest:
    """Load `source` with layout `name` ("auto" detects it). Unknown options raise ConfigError listing valid ones."""
    source = Path(source).expanduser()
    _check_exists(source)
    if name == "auto":
        name = detect_layout(source)
    loader = LAYOUTS.get(name).builder
    valid = layout_options(name)
    if options.get("key") is None:
        options.pop("key", None)
    elif "key" not in inspect.signature(loader).parameters:
        raise ConfigError(f"layout {name!r} cannot read data encrypted at rest; only a labels CSV can (layout 'csv')")
    unknown = sorted(set(options) - {*valid, "key"})
    if unknown:
        raise ConfigError(f"layout {name!r} has no option(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
    return loader(source, **options)


def layout_options(name: str) -> list[str]:
    """The keyword options a layout's loader accepts (for the CLI's --option and for error messages)."""
    parameters = inspect.signature(LAYOUTS.get(name).builder).parameters.values()
    # `key` (data encrypted at rest) is passed by prepare_data from data.key_file/key_env, never a user option.
    return [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "key"]


def detect_layout(path: str | Path) -> str:
    """The name of the first layout (by priority) whose detector recognises `path`; DataError if none does."""
    path = Path(path).expanduser()
    _check_exists(path)
    infos = sorted(LAYOUTS.infos(), key=lambda info: (info.extra.get("priority", 50), info.name))
    for info in infos:
        detect = info.extra.get("detect")
        if detect is not None and detect(path):
            return info.name
    raise DataError(
        f"{path}: cannot tell the dataset layout from its contents; pass one of: {', '.join(LAYOUTS.names())}"
    )


def layout_infos() -> list[EntryInfo]:
    return LAYOUTS.infos()


def layout_card(name: str) -> str:
    """The dataset card (the layout module's docstring)."""
    loader = LAYOUTS.get(name).builder
    module = inspect.getmodule(loader)
    return inspect.cleandoc(module.__doc__ or "") if module is not None else ""


def _check_exists(path: Path) -> None:
    # A labels file encrypted at rest is named by its plain name (labels.csv for labels.csv.rcenc).
    if not path.exists() and stored_file(path) is None:
        raise DataError(f"{path}: no such file or folder")
