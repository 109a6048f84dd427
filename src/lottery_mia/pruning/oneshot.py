"""``oneshot``: global one-shot magnitude pruning of the trained dense network."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .registry import PruningMethod, register_method, weights

if TYPE_CHECKING:
    from torch import nn

    from ..masks import Mask


def magnitude_scores(model: nn.Module, mask: Mask) -> dict:
    """|w| of every weight the mask covers (detached, on the CPU)."""
    return {n: p.detach().abs().cpu() for n, p in weights(model, list(mask.tensors)).items()}


@register_method
class OneShot(PruningMethod):
    """Prune the smallest |w| of the trained dense network, one global ranking over all
    prunable weights (from an all-ones mask: global magnitude pruning)."""

    name = "oneshot"
    kind = "ticket"
    score_state = "trained"
    start = "rewind"
    description = ("one-shot global magnitude pruning of the trained dense network, "
                   "rewound to the rewind state")

    def prune(self, model, mask, *, target, seed, batches=None):
        from ..masks import prune_by_score

        return prune_by_score(magnitude_scores(model, mask), mask, target)
