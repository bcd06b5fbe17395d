"""Name -> implementation, one registry per choice. Config schemas take their allowed values from here."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from enum import Enum
from typing import Generic, TypeVar

from styleexp.errors import UserError

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """The implementations of one choice (``statistic``, ``network``, ...) by the names configs use.

    ``registry["name"]`` raises a :class:`UserError` listing the registered names.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@STATISTICS.register("gram")`` adds the function or class below it as ``gram``."""

        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return add

    def add(self, name: str, entry: T) -> T:
        return self.register(name)(entry)

    def __getitem__(self, name: str) -> T:
        if name not in self._entries:
            raise UserError(f"unknown {self.kind} {name!r}; choose one of {', '.join(self._entries)}")
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def enum(self, name: str, module: str) -> type[Enum]:
        """An Enum ``module.name`` of the registered names, for a config schema: Hydra then rejects any other value.

        It must be assigned to ``name`` in ``module``, where pickling (parallel launchers) finds it.
        """
        return Enum(name, {entry: entry for entry in self._entries}, module=module)


def discover(package: str, path: Iterable[str]) -> None:
    """Import every module of ``package`` (its ``__path__``): each registers what it defines, so an extension is one
    file."""
    for module in pkgutil.iter_modules(path):
        importlib.import_module(f"{package}.{module.name}")
