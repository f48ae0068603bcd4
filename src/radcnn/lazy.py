"""Lazy package exports: a package lists its public names and the modules that define them, and each module is
imported only when one of its names is first used (so `import radcnn` does not load torch, and recognising an
encrypted file does not load `cryptography`)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str], namespace: dict[str, Any]) -> tuple[Callable, Callable]:
    """The module-level ``__getattr__`` and ``__dir__`` of `package`, which exports `exports` {name: module}."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *exports})

    return __getattr__, __dir__
