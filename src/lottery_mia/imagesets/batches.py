"""What every image set shares: model input in standard strides (and its check), the
steps of an epoch, a rank's share of a batch, normalisation, an epoch's plan."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _check_indices(indices: np.ndarray, n: int, where) -> None:
    """A membership table built from other data names more images than the pool has."""
    if len(indices) and (indices.min() < 0 or indices.max() >= n):
        raise ValueError(f"the membership table asks for image {int(indices.max())} of {where}, "
                         f"which has {n}: the table was built from other data; delete the "
                         "dataset's membership.parquet and rerun (the split is rebuilt)")


# --------------------------------------------------------------------------- model input
def standard_strides(shape, channels_last: bool = False) -> tuple[int, ...]:
    """The strides of a freshly allocated tensor of ``shape``: row-major (NCHW), or NHWC
    for a 4-D ``channels_last`` tensor."""
    if channels_last and len(shape) == 4:
        n, c, h, w = shape
        return (h * w * c, 1, w * c, c)
    strides, acc = [], 1
    for size in reversed(tuple(shape)):
        strides.append(acc)
        acc *= max(int(size), 1)
    return tuple(reversed(strides))


def as_model_input(x, channels_last: bool = False):
    """``x`` laid out exactly as a freshly allocated tensor of its memory format.

    ``Tensor.contiguous()`` is not enough: a tensor with a size-1 dimension can report
    itself contiguous with strides that are also those of another layout (a 1-channel
    N x 1 x 8 x 8 batch with strides (64, 1, 8, 1) is both NCHW- and NHWC-contiguous), and
    oneDNN then picks an NHWC convolution kernel whose backward pass corrupts the heap on
    AVX2 machines without AVX-512. Every batch a model sees goes through here."""
    import torch

    fmt = torch.channels_last if channels_last and x.dim() == 4 else torch.contiguous_format
    if tuple(x.stride()) != standard_strides(x.shape, channels_last and x.dim() == 4):
        x = x.clone(memory_format=fmt)
    return x


def check_model_input(x, channels_last: bool = False) -> None:
    """Raise if ``x`` is not laid out as :func:`as_model_input` makes it."""
    want = standard_strides(x.shape, channels_last and x.dim() == 4)
    if tuple(x.stride()) != want:
        raise AssertionError(f"a batch of shape {tuple(x.shape)} reached the model with "
                             f"strides {tuple(x.stride())}, not the standard {want}")


# --------------------------------------------------------------------------- image sets
def shard_range(n: int, shard: tuple[int, int] | None) -> tuple[int, int]:
    """The contiguous part [lo, hi) of ``n`` items that rank ``shard[0]`` of ``shard[1]``
    takes (the whole range without a shard): how evaluation is split across ranks."""
    if shard is None:
        return 0, n
    rank, world = shard
    return rank * n // world, (rank + 1) * n // world


def batch_part(lo: int, hi: int, shard: tuple[int, int] | None) -> tuple[int, int]:
    """The rows of global batch [lo, hi) that rank ``shard[0]`` of ``shard[1]`` trains on:
    an equal, contiguous part (a distributed run checks at its start that its batches
    split evenly)."""
    if shard is None or shard[1] == 1:
        return lo, hi
    rank, world = shard
    size = hi - lo
    if size % world:
        raise ValueError(f"a batch of {size} images does not split evenly over {world} ranks")
    per = size // world
    return lo + rank * per, lo + (rank + 1) * per


def normalize_batch(xb, mean, std, channels_last: bool):
    """uint8 (or 0..255 float) images -> the normalised float32 batch a model sees, laid
    out as :func:`as_model_input` makes it."""
    xb = as_model_input((xb.float() / 255.0 - mean) / std, channels_last)
    check_model_input(xb, channels_last)
    return xb


@dataclass
class EpochPlan:
    """Everything random about one epoch of an in-memory set, drawn on the set's device
    before the epoch's first step: the sample order and, per position in the epoch, the
    crop offsets and flips. A step only slices it (no host reads, no copies)."""

    batch_size: int
    steps: int
    take: int  # samples the epoch uses: steps x batch (all of them when fewer)
    perm: object
    pad: int = 0
    oy: object = None
    ox: object = None
    flip: object = None
