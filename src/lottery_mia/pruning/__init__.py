"""Pruning methods: how a ticket's (or a control's) mask is chosen.

Every module of this package but ``registry`` and ``jobs`` registers one method in
:data:`METHODS` (see :mod:`lottery_mia.pruning.registry`); importing the package imports them
all. The import does not load torch (no method module imports it at module level): the
Snakefile reads the registry while it builds the DAG. ``jobs`` (the DAG's pruning jobs, which
do use torch) is imported by the jobs only.

- ``oneshot``        global magnitude pruning of the trained dense network (the ticket)
- ``imp``            iterative magnitude pruning, a fraction of the survivors per round
- ``random_reinit``  the oneshot mask, retrained from fresh random weights (control)
- ``random_mask``    a random mask with the oneshot mask's per-layer counts (control)
- ``snip``           SNIP connection sensitivity at initialisation (control)
- ``grasp``          GraSP gradient-signal preservation at initialisation (control)
"""

import importlib
import pkgutil

from .registry import (METHODS, PruningMethod, derived_seed, describe_methods, get_method,
                       method_names, prune_by_score, register_method)

for _mod in pkgutil.iter_modules(__path__):  # every module here registers its method
    if _mod.name not in ("registry", "jobs"):
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = ["METHODS", "PruningMethod", "derived_seed", "describe_methods", "get_method",
           "method_names", "prune_by_score", "register_method"]
