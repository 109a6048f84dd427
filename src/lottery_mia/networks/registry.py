"""The architecture registry: one file per architecture in this package.

An architecture registers its name, a constructor and what the rest of the pipeline needs
to know without building it:

- ``build(num_classes, width, in_channels, small_input)``: the network (torch is imported
  when it is called, never when the registry is read: the Snakefile reads it to build the
  DAG);
- ``classifier``: the module names of its final classifier, the layers ``pruning.prune_fc``
  keeps dense when false (a VGG has three ``Linear`` layers of which only the last one
  classifies; ResNets have ``fc``);
- ``width``: what the recipe's ``width`` knob scales, and its default (the paper's value).

:func:`build_model` builds a registered network and records its classifier on it
(``model.classifier_layers``), so :mod:`lottery_mia.masks` reads the declaration from the
model itself. Pure standard library.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..registry import Registry

__all__ = ["Architecture", "ARCHITECTURES", "register_architecture", "build_model"]


@dataclass(frozen=True)
class Architecture:
    name: str
    build: Callable  # (num_classes, width, in_channels, small_input) -> nn.Module
    classifier: tuple[str, ...]  # module names of the final classifier
    default_width: int  # the width of the published architecture
    width: str  # what ``width`` scales
    description: str


ARCHITECTURES: Registry[Architecture] = Registry("architecture", "architectures")


def register_architecture(name: str, *, classifier: tuple[str, ...], default_width: int,
                          width: str, description: str):
    """Decorator of an architecture's constructor
    ``build(num_classes, width, in_channels, small_input) -> nn.Module``."""
    def deco(build):
        ARCHITECTURES.register(name, Architecture(name, build, tuple(classifier),
                                                  int(default_width), width, description))
        return build
    return deco


NORMS = ("batch", "group")


def build_model(arch: str, num_classes: int, *, width: int | None = None,
                in_channels: int = 3, small_input: bool = False, norm: str = "batch"):
    """The registered network ``arch`` (``width`` None: its published width), its classifier
    recorded as ``classifier_layers``. ``norm="group"``: every BatchNorm2d replaced by a
    GroupNorm of min(32, C) groups (weight 1, bias 0), as DP-SGD needs (a per-sample
    gradient has no batch statistics; Opacus's ModuleValidator.fix does the same); the
    other weights are drawn exactly as with BatchNorm."""
    spec = ARCHITECTURES.get_entry(arch)
    if norm not in NORMS:
        raise ValueError(f"unknown normalisation {norm!r}; expected one of {NORMS}")
    model = spec.build(num_classes, spec.default_width if width is None else int(width),
                       in_channels, small_input)
    if norm == "group":
        group_norm_(model)
    model.classifier_layers = spec.classifier
    return model


def group_norm_(model):
    """Replace every BatchNorm2d of ``model`` by GroupNorm(min(32, C), C), in place, and make
    its ReLUs out of place (the same values; a per-sample-gradient hook on a norm layer
    forbids changing its output in place)."""
    import torch.nn as nn

    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                c = child.num_features
                setattr(module, child_name, nn.GroupNorm(min(32, c), c, affine=True))
            elif isinstance(child, nn.ReLU):
                child.inplace = False
    return model
