"""What every pruning method shares: the base class, the registry and the helpers.

A pruning method is a name -> one :class:`PruningMethod` subclass::

    @register_method
    class MyMethod(PruningMethod):
        name = "mine"
        kind = "control"
        description = "one line for the report"

        @dataclass(frozen=True)
        class Settings:            # config key pruning.mine
            strength: float = field(default=1.0, metadata=setting(lambda v: v > 0, "> 0"))

        def prune(self, model, mask, *, target, seed, batches=None) -> Mask: ...

The class attributes tell the DAG and the training jobs what a method needs (which network
its scores are computed on, which mask it starts from, where the pruned network retrains
from); ``prune`` only turns a network and a mask into a new mask. Results paths are keyed by
the registered name, so the next method is one new module in this package (the package
imports every module, so registering is enough).

This module must stay importable without torch: the Snakefile imports it while it builds the
DAG. torch and :mod:`lottery_mia.masks` are imported inside the functions that need them.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import math
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, ClassVar

from ..registry import Registry

if TYPE_CHECKING:  # torch is only needed when a method prunes
    from torch import Tensor, nn

    from ..masks import Mask

KINDS = ("ticket", "control")
SCORE_STATES = ("trained", "init")
STARTS = ("rewind", "init", "reinit")


def setting(check: Callable[[object], bool], rule: str) -> dict:
    """``field(metadata=setting(check, rule))``: a range check of one setting, e.g.
    ``setting(lambda v: 0 < v < 1, "in (0, 1)")``; the rule is quoted in the error."""
    return {"check": check, "rule": rule}


@dataclass(frozen=True)
class NoSettings:
    """The settings of a method that has none."""


class PruningMethod:
    """One way of choosing the weights to prune (see the module docstring)."""

    name: ClassVar[str]
    kind: ClassVar[str] = "ticket"
    score_state: ClassVar[str] = "trained"
    base_mask: ClassVar[str | None] = None
    start: ClassVar[str] = "rewind"
    iterative: ClassVar[bool] = False
    needs_data: ClassVar[bool] = False
    description: ClassVar[str] = ""
    Settings: ClassVar[type] = NoSettings

    def __init__(self, settings: dict | None = None, key: str | None = None):
        self.key = key if key is not None else f"pruning.{self.name}"
        self.settings = parse_settings(self.Settings, settings, self.key)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.settings!r})"

    # ------------------------------------------------------------------ the interface
    def mask_at(self, model: nn.Module, sparsity: float, *, prune_fc: bool = True,
                seed: int = 0, batches: list | None = None) -> Mask:
        """This method's mask of ``model`` at ``sparsity``, from an all-ones mask."""
        from ..masks import Mask

        ones = Mask.ones_like(model, prune_fc)
        return self.prune(model, ones, target=self.target_pruned(ones, sparsity), seed=seed,
                          batches=batches)

    def target_pruned(self, mask: Mask, sparsity: float | None) -> int:
        """Total number of pruned prunable weights the new mask must have."""
        if sparsity is None:
            raise ValueError(f"pruning method {self.name!r} needs a target sparsity")
        check_sparsity(sparsity)
        return int(round(sparsity * mask.n_total()))

    def prune(self, model: nn.Module, mask: Mask, *, target: int, seed: int,
              batches: list | None = None) -> Mask:
        """A new mask with exactly ``target`` pruned weights, ``prune_fc`` copied from
        ``mask``, never un-pruning a weight that ``mask`` prunes."""
        raise NotImplementedError(f"pruning method {self.name!r} does not implement prune()")

    # ------------------------------------------------------------------ iterative methods
    def rounds_for(self, sparsity: float) -> int:
        raise ValueError(f"pruning method {self.name!r} is not iterative: it has no rounds")

    def round_sparsity(self, k: int) -> float:
        raise ValueError(f"pruning method {self.name!r} is not iterative: it has no rounds")

    # ------------------------------------------------------------------ helpers
    def _needs_batches(self, batches) -> list:
        if not batches:
            raise ValueError(f"pruning method {self.name!r} needs minibatches of the "
                             f"training set (batches=[(x, y), ...]), got {batches!r}")
        return list(batches)


METHODS: Registry[type[PruningMethod]] = Registry("pruning method", "pruning.methods")


def register_method(cls: type[PruningMethod]) -> type[PruningMethod]:
    """Class decorator: add ``cls`` to :data:`METHODS` under ``cls.name``."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"pruning method {cls.__name__} has no name")
    if name in METHODS:
        raise ValueError(f"pruning method {name!r} is registered twice "
                         f"({METHODS[name].__name__} and {cls.__name__})")
    if not (isinstance(cls, type) and issubclass(cls, PruningMethod)):
        raise ValueError(f"pruning method {name!r}: {cls!r} is not a PruningMethod subclass")
    for attr, allowed in (("kind", KINDS), ("score_state", SCORE_STATES), ("start", STARTS)):
        if getattr(cls, attr) not in allowed:
            raise ValueError(f"pruning method {name!r}: {attr} {getattr(cls, attr)!r} is not "
                             f"one of {list(allowed)}")
    if cls.base_mask is not None and not isinstance(cls.base_mask, str):
        raise ValueError(f"pruning method {name!r}: base_mask must be None or a method name")
    if not (dataclasses.is_dataclass(cls.Settings) and isinstance(cls.Settings, type)):
        raise ValueError(f"pruning method {name!r}: Settings must be a dataclass")
    METHODS.register(name, cls)
    return cls


def method_names() -> list[str]:
    return sorted(METHODS)


def get_method(name: str, settings: dict | None = None, key: str | None = None
               ) -> PruningMethod:
    """An instance of the method called ``name``, its ``settings`` validated."""
    return METHODS.get_entry(name)(settings, key)


def describe_methods() -> list[dict]:
    """One row per registered method, for the README and the report."""
    return [{"name": cls.name, "kind": cls.kind, "description": cls.description,
             "start": cls.start, "score_state": cls.score_state,
             "base_mask": cls.base_mask, "iterative": cls.iterative}
            for cls in (METHODS[n] for n in method_names())]


def derived_seed(seed: int, purpose: str, sparsity: float | None = None) -> int:
    """A 32-bit seed for one purpose (and sparsity), from sha256 of the run's seed."""
    text = f"{seed}:{purpose}:{sparsity!r}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def check_sparsity(sparsity: float) -> None:
    if (isinstance(sparsity, bool) or not isinstance(sparsity, (int, float))
            or not 0.0 <= sparsity < 1.0):
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity!r}")


# ---------------------------------------------------------------------- settings
def parse_settings(settings_cls: type, settings: dict | None, key: str):
    """The ``settings_cls`` dataclass from a config dict; ValueError naming the key."""
    if settings is None:
        settings = {}
    if not isinstance(settings, dict):
        raise ValueError(f"config key '{key}': expected a mapping of settings, "
                         f"got {type(settings).__name__} {settings!r}")
    fields = {f.name: f for f in dataclasses.fields(settings_cls)}
    allowed = sorted(fields)
    unknown = sorted(set(map(str, settings)) - set(allowed))
    if unknown:
        hints = [f"{u!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(
            u, allowed, n=1)) else repr(u) for u in unknown]
        raise ValueError(f"config key '{key}': unknown setting(s) {', '.join(hints)}; "
                         f"allowed: {allowed}")
    hints = typing.get_type_hints(settings_cls)
    values = {}
    for name, value in settings.items():
        values[name] = _check_value(f"{key}.{name}", hints.get(name), value, fields[name])
    return settings_cls(**values)


def _check_value(where: str, typ, value, field: dataclasses.Field):
    if typ is bool:
        if not isinstance(value, bool):
            raise ValueError(f"config key '{where}': expected true or false, got {value!r}")
    elif typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"config key '{where}': expected an integer, "
                             f"got {type(value).__name__} {value!r}")
    elif typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise ValueError(f"config key '{where}': expected a number, "
                             f"got {type(value).__name__} {value!r}")
        value = float(value)
    elif typ is str:
        if not isinstance(value, str):
            raise ValueError(f"config key '{where}': expected a string, "
                             f"got {type(value).__name__} {value!r}")
    check = field.metadata.get("check")
    if check is not None and not check(value):
        raise ValueError(f"config key '{where}': must be {field.metadata.get('rule', 'valid')}"
                         f", got {value!r}")
    return value


# ---------------------------------------------------------------------- helpers
def weights(model: nn.Module, names: list[str]) -> dict[str, Tensor]:
    """The named parameters of ``model`` (ValueError naming a missing one)."""
    params = dict(model.named_parameters())
    missing = [n for n in names if n not in params]
    if missing:
        raise ValueError(f"the model has no parameter(s) {missing}")
    return {n: params[n] for n in names}
