"""Pruning methods: how a ticket's (or a control's) mask is chosen.

Every module of this package but ``registry`` registers one method in :data:`METHODS` (see
:mod:`lottery_mia.pruning.registry`); importing the package imports them all. The import
does not load torch (no method module imports it at module level): the Snakefile reads the
registry while it builds the DAG. The pruning job is :mod:`lottery_mia.jobs.prune`; the mask
arithmetic every method prunes by is :func:`lottery_mia.masks.prune_by_score`.

- ``oneshot``        global magnitude pruning of the trained dense network (the ticket)
- ``imp``            iterative magnitude pruning, a fraction of the survivors per round
- ``random_reinit``  the oneshot mask, retrained from fresh random weights (control)
- ``random_mask``    a random mask with the oneshot mask's per-layer counts (control)
- ``snip``           SNIP connection sensitivity at initialisation (control)
- ``grasp``          GraSP gradient-signal preservation at initialisation (control)
"""

from .registry import (METHODS, PruningMethod, derived_seed, describe_methods, get_method,
                       method_names, register_method)

METHODS.load(__name__, skip=("registry",))  # every other module registers its method

__all__ = ["METHODS", "PruningMethod", "derived_seed", "describe_methods", "get_method",
           "method_names", "register_method"]
