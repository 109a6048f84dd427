"""Training-time defences against membership inference: a registry, one file each.

A defence is a recipe setting, ``training.<dataset>.<arch>.defence: {<name>: {settings}}``
(one defence per recipe): every network of that recipe (dense, tickets, controls and
reference models alike) trains with it, so a ticket is compared with a dense network that
had the same protection. A defence here changes the training loss; the step, the mask and
the optimizer are untouched. Without one the loss is the cross-entropy, exactly as before
(a recipe without ``defence`` keeps its identity and its networks).

Register one in a new module of this package::

    @register_defence("name", defaults={...}, description="...")
    class MyDefence:
        def __init__(self, settings: dict): ...   # raises ValueError naming the key
        def loss(self, logits, labels): ...       # torch tensors -> a scalar tensor

This package imports no torch: a defence imports it when its loss is built (the DAG build
checks the settings without it).
"""

from __future__ import annotations

from typing import Callable

from .base import DEFENCES, KEY, DefenceKind, register_defence

__all__ = ["DEFENCES", "DefenceKind", "register_defence", "check_defence", "training_loss",
           "defence_label", "parse_label", "short_label", "strength_order"]


def check_defence(spec, key: str = KEY) -> dict | None:
    """``spec`` as ``{name: settings}`` with the defaults filled in (None: no defence), or a
    ValueError naming ``key``, the defence and the setting at fault."""
    if spec is None:
        return None
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ValueError(f"config key {key}: give one defence as {{name: {{settings}}}}, "
                         f"one of {sorted(DEFENCES)}; got {spec!r}")
    (name, settings), = spec.items()
    kind = DEFENCES.get_entry(str(name), key)
    if settings is not None and not isinstance(settings, dict):
        raise ValueError(f"config key {key}.{name}: settings must be a mapping, got "
                         f"{type(settings).__name__}")
    unknown = sorted(set(settings or {}) - set(kind.defaults))
    if unknown:
        raise ValueError(f"config key {key}.{name}: unknown setting(s) {unknown}; allowed: "
                         f"{sorted(kind.defaults)}")
    merged = {**kind.defaults, **(settings or {})}
    kind.factory(merged)  # its own checks
    return {name: merged}


def training_loss(spec) -> Callable:
    """The training loss ``loss(logits, labels)`` of a recipe's ``defence`` (None: the
    cross-entropy of the logits in float32, as the training step always used)."""
    if spec is None:
        import torch.nn.functional as F

        def cross_entropy(logits, labels):
            return F.cross_entropy(logits.float(), labels)
        return cross_entropy
    checked = check_defence(spec)
    (name, settings), = checked.items()
    return DEFENCES[name].factory(settings).loss


def defence_label(defence: dict | None) -> str:
    """'none', or 'ppb (strength=3)': a recipe's defence as the report and figures label it
    (settings sorted by name)."""
    if not defence:
        return "none"
    (name, settings), = defence.items()
    parts = [f"{k}={v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool)
             else f"{k}={v}" for k, v in sorted((settings or {}).items())]
    return f"{name} ({', '.join(parts)})"


def parse_label(label: str) -> tuple[str, dict]:
    """('none', {}) or (name, settings) of a :func:`defence_label`."""
    if label == "none" or " (" not in label:
        return label, {}
    name, rest = label.split(" (", 1)
    settings = {}
    for part in rest.rstrip(")").split(", "):
        k, _, v = part.partition("=")
        try:
            settings[k] = float(v)
        except ValueError:
            settings[k] = v
    return name, settings


def _strength(name: str, settings: dict):
    """((setting, symbol, larger is stronger), its value) of a defence's strength, or
    (None, None) when its registry entry declares none or the label lacks it."""
    spec = getattr(DEFENCES.get(name), "strength", None)
    if spec and isinstance(settings.get(spec[0]), float):
        return spec, settings[spec[0]]
    return None, None


def short_label(label: str) -> str:
    """'ppb λ=0.3', 'dpsgd ε=8': a defence by its strength (the label itself otherwise)."""
    name, settings = parse_label(label)
    spec, value = _strength(name, settings)
    return f"{name} {spec[1]}={value:g}" if spec else label


def strength_order(label: str) -> float:
    """A defence label's place along its frontier: none first, then from the weakest
    setting to the strongest (a larger PPB strength, a smaller DP-SGD epsilon)."""
    name, settings = parse_label(label)
    if name == "none":
        return float("-inf")
    spec, value = _strength(name, settings)
    if spec is None:
        numbers = [v for v in settings.values() if isinstance(v, float)]
        return numbers[-1] if numbers else 0.0
    return value if spec[2] else -value


DEFENCES.load(__name__, skip=("base",))  # every other module registers one
