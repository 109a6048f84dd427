"""One registry mechanism for every pluggable kind: pruning methods, attacks, figures.

A :class:`Registry` maps a name to an entry (a class, a factory, a figure spec). Each kind
lives in a package whose modules register their entries when imported;
:meth:`Registry.load` imports every module of the package, so adding a method, an attack or
a figure is one new module. Looking up an unknown name fails naming the config key and the
closest registered name. Pure standard library: the Snakefile reads the registries while it
builds the DAG.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Mapping
from typing import Generic, Iterator, TypeVar

T = TypeVar("T")

__all__ = ["Registry"]


class Registry(Mapping, Generic[T]):
    """Registered entries by name (a read-only mapping)."""

    def __init__(self, what: str, key: str):
        self.what = what  # "pruning method", for messages
        self.key = key  # the config key that names entries, e.g. "pruning.methods"
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T) -> T:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.what} needs a name, got {name!r}")
        if name in self._entries:
            raise ValueError(f"{self.what} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def get_entry(self, name, key: str | None = None) -> T:
        """The entry called ``name``; an unknown one is a ValueError naming the config key
        (``key``, default the registry's) and the closest registered name."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            m = difflib.get_close_matches(str(name), sorted(self._entries), n=1)
            hint = f" (did you mean {m[0]!r}?)" if m else ""
            raise ValueError(f"config key '{key or self.key}': no {self.what} is called "
                             f"{name!r}{hint}; choose from {sorted(self._entries)}") from None

    def load(self, package: str, skip: tuple[str, ...] = ()) -> None:
        """Import every module of ``package`` but ``skip`` (each registers its entries)."""
        pkg = importlib.import_module(package)
        for mod in pkgutil.iter_modules(pkg.__path__):
            if mod.name not in skip and not mod.name.startswith("_"):
                importlib.import_module(f"{package}.{mod.name}")

    def __getitem__(self, name: str) -> T:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.what!r}: {sorted(self._entries)})"
