"""What every defence shares: the registry (see the package)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..registry import Registry

__all__ = ["DEFENCES", "DefenceKind", "register_defence", "KEY"]

KEY = "training.<dataset>.<arch>.defence"


@dataclass(frozen=True)
class DefenceKind:
    name: str
    factory: Callable  # (settings) -> object with loss(logits, labels)
    description: str
    defaults: dict = field(default_factory=dict)
    # (the setting that is its strength, its symbol, whether a larger value protects more)
    strength: tuple[str, str, bool] | None = None


DEFENCES: Registry[DefenceKind] = Registry("defence", KEY)


def register_defence(name: str, *, description: str, defaults: dict | None = None,
                     strength: tuple[str, str, bool] | None = None):
    def deco(factory):
        DEFENCES.register(name, DefenceKind(name, factory, description, dict(defaults or {}),
                                            strength))
        return factory
    return deco


