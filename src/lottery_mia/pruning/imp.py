"""``imp``: iterative magnitude pruning (Frankle & Carbin 2019; Frankle et al. 2020).

Round k prunes ``round(fraction * survivors)`` of the smallest |w| left after round k-1,
ranked on round k-1's retrained ticket (round 1: the trained dense network), so the masks
are nested and round k's nominal sparsity is ``1 - (1 - fraction)**k``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .oneshot import magnitude_scores
from .registry import PruningMethod, register_method, setting


@register_method
class IMP(PruningMethod):
    name = "imp"
    kind = "ticket"
    score_state = "trained"
    start = "rewind"
    iterative = True
    description = ("iterative magnitude pruning: each round prunes a fraction of the "
                   "surviving weights of the previous round's retrained ticket, then rewinds")

    @dataclass(frozen=True)
    class Settings:
        fraction: float = field(default=0.2, metadata=setting(lambda v: 0.0 < v < 1.0,
                                                               "in (0, 1)"))

    def target_pruned(self, mask, sparsity=None):
        """The previous round's pruned count plus ``fraction`` of the survivors (the
        sparsity is ignored: a round's target follows from the mask it starts from)."""
        n, p = mask.n_total(), mask.n_pruned()
        return p + int(round(self.settings.fraction * (n - p)))

    def prune(self, model, mask, *, target, seed, batches=None):
        from ..masks import prune_by_score

        return prune_by_score(magnitude_scores(model, mask), mask, target)

    def round_sparsity(self, k: int) -> float:
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ValueError(f"round must be an integer >= 0, got {k!r}")
        return 1.0 - (1.0 - self.settings.fraction) ** k

    def rounds_for(self, sparsity: float) -> int:
        """The first round k >= 1 whose nominal sparsity reaches ``sparsity``."""
        if (isinstance(sparsity, bool) or not isinstance(sparsity, (int, float))
                or not 0.0 <= sparsity < 1.0):
            raise ValueError(f"sparsity must be in [0, 1), got {sparsity!r}")
        k = 1
        while self.round_sparsity(k) < sparsity - 1e-9:
            k += 1
        return k
