"""One `Registry` type for every pluggable family (models, dataset layouts, explainers).

Each entry is a tiny builder plus a frozen info record; `names()` feeds the CLI listings and parametrized tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from radcnn.errors import UnknownNameError

T = TypeVar("T", bound=Callable[..., Any])


@dataclass(frozen=True)
class EntryInfo:
    """What a registry knows about one entry besides its builder."""

    name: str
    summary: str = ""
    tags: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Entry(Generic[T]):
    info: EntryInfo
    builder: T


class Registry(Generic[T]):
    """A name → builder mapping that refuses duplicates and explains unknown names."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, *, summary: str = "", tags: tuple[str, ...] = (), **extra: Any) -> Callable[[T], T]:
        """Decorator: `@MODELS.register("seed_cnn", summary=...)`."""

        def decorate(builder: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            doc = (builder.__doc__ or "").strip().splitlines()
            info = EntryInfo(name=name, summary=summary or (doc[0] if doc else ""), tags=tags, extra=extra)
            self._entries[name] = Entry(info=info, builder=builder)
            return builder

        return decorate

    def get(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self.names()) from None

    def build(self, name: str, /, **kwargs: Any) -> Any:
        return self.get(name).builder(**kwargs)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def infos(self) -> list[EntryInfo]:
        return [self._entries[n].info for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
