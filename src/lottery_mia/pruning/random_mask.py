"""``random_mask``: a random mask with the oneshot mask's per-layer pruned counts.

The layer-wise random pruning control (Frankle et al. 2021, "Pruning neural networks at
initialization: why are we missing the mark?"): in every layer the same number of weights
as the base mask prunes, chosen uniformly at random (``torch.Generator`` on the CPU, seeded
by ``seed``), then retrained from the rewind state.

Unlike the other methods this one does *not* keep the base mask's pruned weights pruned:
the base mask gives only the per-layer counts.
"""

from __future__ import annotations

from .registry import PruningMethod, register_method


def random_layerwise_mask(mask, seed: int):
    """Per layer, ``(mask == 0).sum()`` pruned positions drawn uniformly at random."""
    import torch

    from ..masks import Mask

    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    tensors = {}
    for name, t in mask.tensors.items():
        n_pruned = int((t == 0).sum())
        keep = torch.ones(t.numel(), dtype=torch.float32)
        if n_pruned:
            keep[torch.randperm(t.numel(), generator=gen)[:n_pruned]] = 0.0
        tensors[name] = keep.view_as(t)
    return Mask(tensors, mask.prune_fc)


@register_method
class RandomMask(PruningMethod):
    name = "random_mask"
    kind = "control"
    score_state = "trained"
    base_mask = "oneshot"
    start = "rewind"
    description = ("a uniformly random mask with the oneshot mask's per-layer sparsities, "
                   "retrained from the rewind state")

    def prune(self, model, mask, *, target, seed, batches=None):
        if target != mask.n_pruned():
            raise ValueError(f"random_mask keeps its base mask's counts: target {target} "
                             f"must equal the {mask.n_pruned()} weights it prunes")
        return random_layerwise_mask(mask, seed)
