"""Pruning methods: how a ticket's (or a control's) mask is chosen.

Every module of this package registers one method in :data:`METHODS` (see
:mod:`lottery_mia.pruning.registry`); importing the package imports them all. The import
does not load torch: the Snakefile reads the registry while it builds the DAG.

- ``oneshot``        global magnitude pruning of the trained dense network (the ticket)
- ``imp``            iterative magnitude pruning, a fraction of the survivors per round
- ``random_reinit``  the oneshot mask, retrained from fresh random weights (control)
- ``random_mask``    a random mask with the oneshot mask's per-layer counts (control)
- ``snip``           SNIP connection sensitivity at initialisation (control)
- ``grasp``          GraSP gradient-signal preservation at initialisation (control)
"""

from .registry import (METHODS, PruningMethod, derived_seed, describe_methods, get_method,
                       method_names, prune_by_score, register_method)
from . import grasp, imp, oneshot, random_mask, random_reinit, snip  # noqa: F401  (register)

__all__ = ["METHODS", "PruningMethod", "derived_seed", "describe_methods", "get_method",
           "method_names", "prune_by_score", "register_method"]
