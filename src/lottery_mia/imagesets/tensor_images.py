"""Images held in memory as one uint8 tensor (digits, CIFAR: the ``memory`` sources of
:mod:`lottery_mia.datasets`); on CUDA moved to the device once, an epoch's augmentation
(order, random crop with zero padding, horizontal flip) drawn on the device before the
epoch, each step only gathering from it."""

from __future__ import annotations

from typing import Iterator
from .batches import EpochPlan, batch_part, normalize_batch, shard_range
from ..recipe import Augment, steps_per_epoch


class TensorImageSet:
    """A labelled image set held as one uint8 tensor, optionally on the GPU.

    Training batches come from an :class:`EpochPlan` drawn on the set's device with a
    generator seeded by the epoch's order seed (on the CPU the sample order is what it
    always was); each step then gathers, crops, flips and normalises on the device, with no
    host synchronisation and no host-to-device copy. With ``shard=(rank, world)`` a rank
    gets its equal part of every global batch, so the ranks together see exactly the
    batches (and augmentations) of a single-process run.
    """

    def __init__(self, x_uint8, y, mean, std, device="cpu", channels_last=False):
        import torch

        self.device = torch.device(device)
        self.x = torch.as_tensor(x_uint8).to(self.device)
        self.y = torch.as_tensor(y, dtype=torch.long).to(self.device)
        c = self.x.shape[1]
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, c, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, c, 1, 1)
        self.channels_last = channels_last

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def _prep(self, xb):
        return normalize_batch(xb, self.mean, self.std, self.channels_last)

    def epoch_plan(self, batch_size: int, order_seed: int, augment: Augment,
                   shard: tuple[int, int] | None = None) -> EpochPlan:
        """Draw the epoch on the device (see the class). In a distributed run every rank
        draws it from the same seed and rank 0's plan is broadcast, so the ranks agree even
        if their devices' generators did not."""
        import torch

        n = len(self)
        steps = steps_per_epoch(n, batch_size)
        # the last incomplete batch is dropped: a batch of 2 makes BatchNorm's statistics
        # (over 1x1 maps in the last stage for small images) noise and destabilises training
        take = min(steps * batch_size, n)
        dev = self.device
        if dev.type == "cpu":
            g = torch.Generator().manual_seed(order_seed)
            perm = torch.randperm(n, generator=g)
        else:
            g = torch.Generator(device=dev).manual_seed(order_seed)
            perm = torch.randperm(n, generator=g, device=dev)
        plan = EpochPlan(batch_size, steps, take, perm, pad=augment.crop_padding)
        if augment.crop_padding > 0:
            span = 2 * augment.crop_padding + 1
            plan.oy = torch.randint(0, span, (take,), generator=g, device=dev)
            plan.ox = torch.randint(0, span, (take,), generator=g, device=dev)
        if augment.hflip:
            plan.flip = torch.rand(take, generator=g, device=dev) < 0.5
        if shard is not None and shard[1] > 1:
            from ..distributed import broadcast_from_rank0, world_size

            if world_size() > 1:  # (without a process group: ranks simulated in one process)
                plan.perm, plan.oy, plan.ox, plan.flip = broadcast_from_rank0(
                    [plan.perm, plan.oy, plan.ox, plan.flip])
        return plan

    def plan_batch(self, plan: EpochPlan, step: int, shard: tuple[int, int] | None = None):
        """Batch ``step`` of an epoch plan (this rank's part of it under ``shard``), made by
        slicing device tensors and device ops alone."""
        lo = step * plan.batch_size
        lo, hi = batch_part(lo, min(lo + plan.batch_size, plan.take), shard)
        idx = plan.perm[lo:hi]
        xb = self.x[idx]
        if plan.oy is not None:
            xb = _crop(xb, plan.pad, plan.oy[lo:hi], plan.ox[lo:hi])
        if plan.flip is not None:
            xb = _flip(xb, plan.flip[lo:hi])
        return self._prep(xb), self.y[idx]

    def train_batches(self, batch_size: int, order_seed: int, augment: Augment, *,
                      skip: int = 0, shard: tuple[int, int] | None = None) -> Iterator:
        """The epoch's batches from step ``skip`` on (``skip`` > 0: a start mid-epoch)."""
        plan = self.epoch_plan(batch_size, order_seed, augment, shard)
        for step in range(skip, plan.steps):
            yield self.plan_batch(plan, step, shard)

    def eval_batches(self, batch_size: int, shard: tuple[int, int] | None = None) -> Iterator:
        """Batches in the set's order (this rank's contiguous part under ``shard``)."""
        lo, hi = shard_range(len(self), shard)
        for start in range(lo, hi, batch_size):
            end = min(start + batch_size, hi)
            yield self._prep(self.x[start:end]), self.y[start:end]


def _crop(xb, pad: int, oy, ox):
    """Random crops after zero padding by ``pad``, at offsets ``oy``, ``ox`` (device
    tensors, one per image): one gather, no host read."""
    import torch
    import torch.nn.functional as F

    n, c, h, w = xb.shape
    padded = F.pad(xb, (pad, pad, pad, pad))
    rows = oy[:, None] + torch.arange(h, device=xb.device)[None, :]  # n x h
    cols = ox[:, None] + torch.arange(w, device=xb.device)[None, :]  # n x w
    bidx = torch.arange(n, device=xb.device)[:, None, None, None]
    cidx = torch.arange(c, device=xb.device)[None, :, None, None]
    return padded[bidx, cidx, rows[:, None, :, None], cols[:, None, None, :]]


def _flip(xb, flip):
    """Horizontal flips of the images where ``flip`` (a device bool tensor) is set."""
    import torch

    return torch.where(flip[:, None, None, None], xb.flip(-1), xb)
