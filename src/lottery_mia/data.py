"""A job's data: the images of a membership table's rows, served to training and inference.

The readers are the dataset sources (:mod:`lottery_mia.datasets`, one file each); the image
sets are :mod:`lottery_mia.imagesets.tensor_images` (``memory`` sources: one uint8 tensor, on CUDA
moved to the device once, an epoch's augmentation drawn on the device) and
:mod:`lottery_mia.imagesets.folder_images` (``folder`` sources: ImageFolder layouts through a
DataLoader whose persistent workers hand over uint8 only, JPEGs decoded on the GPU when
there is one); :mod:`lottery_mia.imagesets.batches`, :mod:`lottery_mia.imagesets.decoding` and
:mod:`lottery_mia.imagesets.prefetch` hold what they share.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .imagesets.batches import _check_indices
from .datasets import check_root, dataset_source
from .imagesets.folder_images import FolderImageSet
from .imagesets.tensor_images import TensorImageSet

# The names the jobs and tests take from here (the facade of the modules below).
from .imagesets.batches import as_model_input, check_model_input, standard_strides  # noqa: E402,F401
from .imagesets.decoding import view_params  # noqa: E402,F401
from .recipe import Augment, steps_per_epoch  # noqa: E402,F401


# --------------------------------------------------------------------------- a job's data
@dataclass
class DataSpec:
    """Where a job finds its data: the dataset's source, root and membership table."""

    dataset: str  # the config's name for it
    source: str
    root: str | None
    membership: str

    @property
    def key(self) -> str:
        return f"datasets.{self.dataset}.root"


def member_and_test_sets(data: DataSpec, recipe, device, decode: str = "auto") -> tuple:
    """The members (training set) and non-members (test set) of a membership table, read
    from the pool each row names (a reference model's members can come from any pool).
    ``decode``: where ImageNet's JPEGs are decoded (:class:`FolderImageSet`)."""
    import torch

    from .membership import read_membership

    table = read_membership(data.membership)
    mem = table[table["member"]]
    non = table[~table["member"]]
    channels_last = torch.device(device).type == "cuda"
    kw = dict(key=data.key, device=device, num_workers=recipe.num_workers,
              channels_last=channels_last, decode=decode)
    train_set = rows_image_set(data.source, data.root, mem, **kw)
    test_set = rows_image_set(data.source, data.root, non, **kw)
    return train_set, test_set


# --------------------------------------------------------------------------- pool access
def pool_labels(source: str, root: str | Path | None, *, key: str, download: bool = False
                ) -> dict[str, np.ndarray]:
    """Labels of every image in each pool of ``source`` (pool name -> int64 array)."""
    ds = dataset_source(source)
    if download and ds.downloadable:
        ds.download(Path(root))
    return ds.pool_labels(check_root(source, root, key))


def load_in_memory(source: str, root, pool: str, indices: np.ndarray, *, key: str
                   ) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N x C x H x W) and labels of ``indices`` of one pool of a source held
    in memory (:meth:`lottery_mia.datasets.DatasetSource.load_pool`)."""
    x, y = dataset_source(source).load_pool(check_root(source, root, key), pool)
    _check_indices(np.asarray(indices), len(y), f"{source} pool {pool!r} (from {key})")
    return x[indices], y[indices]


def image_set(source: str, root, pool: str, indices, *, key: str, device="cpu",
              num_workers: int = 4, channels_last: bool = False, decode: str = "auto"):
    """The image set of ``indices`` of ``pool``, in memory when the source is held there."""
    ds = dataset_source(source)
    info = ds.info
    indices = np.asarray(indices, dtype=np.int64)
    if ds.storage == "folder":
        return FolderImageSet(check_root(source, root, key), pool, indices, info.mean, info.std,
                              device=device, num_workers=num_workers,
                              channels_last=channels_last, image_size=info.image_size,
                              decode=decode, folder_of=ds.folder)
    x, y = load_in_memory(source, root, pool, indices, key=key)
    return TensorImageSet(x, y, info.mean, info.std, device=device, channels_last=channels_last)


def rows_image_set(source: str, root, rows, *, key: str, device="cpu", num_workers: int = 4,
                   channels_last: bool = False, decode: str = "auto"):
    """The image set of membership-table ``rows`` (columns ``pool``, ``pool_index``), in
    their order, whichever pools they come from (a reference model's training half of the
    population pool spans the source's train and test/val pools)."""
    pools = rows["pool"].unique().tolist()
    kw = dict(key=key, device=device, num_workers=num_workers, channels_last=channels_last)
    if len(pools) == 1:
        return image_set(source, root, pools[0], rows["pool_index"].to_numpy(), decode=decode,
                         **kw)
    ds = dataset_source(source)
    info = ds.info
    if ds.storage == "folder":  # one set over both folders, each row read from its own
        return FolderImageSet(check_root(source, root, key), rows["pool"].to_numpy(),
                              rows["pool_index"].to_numpy(), info.mean, info.std,
                              device=device, num_workers=num_workers,
                              channels_last=channels_last, image_size=info.image_size,
                              decode=decode, folder_of=ds.folder)
    xs, ys, order = [], [], []
    for pool in pools:
        sel = (rows["pool"] == pool).to_numpy()
        x, y = load_in_memory(source, root, pool, rows["pool_index"].to_numpy()[sel], key=key)
        xs.append(x)
        ys.append(y)
        order.append(np.flatnonzero(sel))
    back = np.argsort(np.concatenate(order), kind="stable")  # restore the rows' order
    x = np.concatenate(xs)[back]
    y = np.concatenate(ys)[back]
    return TensorImageSet(x, y, info.mean, info.std, device=device, channels_last=channels_last)
