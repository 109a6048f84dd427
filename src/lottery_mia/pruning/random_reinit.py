"""``random_reinit``: the oneshot ticket's mask, retrained from fresh random weights.

The control of Frankle & Carbin (2019): same mask, other initial weights. The mask is the
oneshot method's at the same sparsity, returned unchanged; the re-initialisation is done by
the training job (``start = "reinit"``).
"""

from __future__ import annotations

from .registry import PruningMethod, register_method


@register_method
class RandomReinit(PruningMethod):
    name = "random_reinit"
    kind = "control"
    score_state = "trained"
    base_mask = "oneshot"
    start = "reinit"
    description = "the oneshot mask, retrained from freshly re-initialised random weights"

    def prune(self, model, mask, *, target, seed, batches=None):
        if target != mask.n_pruned():
            raise ValueError(f"random_reinit keeps its base mask: target {target} must equal "
                             f"the {mask.n_pruned()} weights it prunes")
        return mask.copy()
