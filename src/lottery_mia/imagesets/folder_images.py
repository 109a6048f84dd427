"""ImageNet-style images read from ImageFolder layouts (the ``folder`` sources of
:mod:`lottery_mia.datasets`), decoded on the CPU or the GPU."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np

from .batches import _check_indices, batch_part, normalize_batch, shard_range
from ..datasets.imagenet import image_folder
from .decoding import (DECODE_CHOICES, _eval_view_uint8, _resize_float, _train_view_uint8,
                       decode_rgb, eval_geometry, is_jpeg, read_image_bytes, view_params)
from .prefetch import _prefetched
from ..recipe import Augment, steps_per_epoch


class _ImageFiles:
    """The loader's dataset. A key is (view, position, seed, hflip), ``view`` being
    ``train`` or ``eval``. With ``encoded`` it gives the encoded file (decoded later, on the
    job's device), else the decoded view; always uint8 (what crosses the process boundary),
    with the label."""

    def __init__(self, paths, labels, image_size: int, encoded: bool):
        self.paths, self.labels = paths, labels
        self.image_size, self.encoded = image_size, encoded

    def __len__(self) -> int:
        return len(self.paths)

    def path(self, i: int) -> str:
        return os.fsdecode(bytes(self.paths[i]))

    def __getitem__(self, key):
        view, i, seed, hflip = key
        path = self.path(i)
        data = read_image_bytes(path)
        label = int(self.labels[i])
        if self.encoded:
            return data, label
        img = decode_rgb(data, path)
        if view == "train":
            return _train_view_uint8(img, seed, self.image_size, hflip), label
        return _eval_view_uint8(img, self.image_size), label


def _collate(batch):
    """(uint8 images stacked, or encoded files as a list; int64 labels)."""
    import torch

    xs, ys = zip(*batch)
    labels = torch.tensor(ys, dtype=torch.long)
    if xs[0].dim() == 1:  # encoded files: one packed tensor and the sizes (one shared-
        # memory transfer per batch from the worker, not one per file)
        return (torch.cat(xs), torch.tensor([x.numel() for x in xs], dtype=torch.long)), labels
    return torch.stack(xs), labels


def _unpack(packed) -> list:
    """The encoded files of a packed batch (:func:`_collate`), as views."""
    data, sizes = packed
    return list(data.split(sizes.tolist()))


class _KeyBatches:
    """The loader's batch sampler: the batches of keys of the pass about to start (set
    before each pass; the loader's workers persist across passes)."""

    def __init__(self):
        self.batches: list = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class FolderImageSet:
    """ImageNet-style images read from ImageFolder layouts (standard 224px recipe).

    Training views are RandomResizedCrop + flip, evaluation views Resize(256) +
    CenterCrop(224), then normalisation. Where the JPEGs are decoded is ``decode``:

    - ``device``: loader workers only read the files; each batch is decoded at once on the
      job's device (``torchvision.io.decode_jpeg(..., device="cuda")``, nvJPEG), cropped,
      resized, flipped and normalised there, in a background thread on a side CUDA stream
      that prepares the next batches while the model trains on this one;
    - ``cpu``: loader workers decode (libjpeg-turbo) and crop/resize in uint8; the batch
      crosses to the main process as uint8 (pinned on CUDA) and is normalised on the device;
    - ``auto``: ``device`` on CUDA, ``cpu`` otherwise.

    Either way nothing but uint8 crosses a process boundary, the workers persist across
    passes, and a sample's view depends on the epoch's seed and its position only
    (:func:`view_params`), so both paths give the same crops, whatever the workers and
    ranks. ``pool`` is one pool name, or one per index (a set spanning the train and val
    folders, as a reference model's training half of the population pool does).
    """

    def __init__(self, root, pool, indices: np.ndarray, mean, std, device="cpu",
                 num_workers: int = 4, channels_last=False, image_size: int = 224,
                 decode: str = "auto", folder_of=None):
        import torch

        self.root = Path(root)
        self.indices = np.asarray(indices, dtype=np.int64)
        pools = (np.full(len(self.indices), pool, dtype=object) if isinstance(pool, str)
                 else np.asarray(pool, dtype=object))
        if len(pools) != len(self.indices):
            raise ValueError(f"{len(pools)} pools for {len(self.indices)} images")
        self.pool = pool if isinstance(pool, str) else "+".join(sorted(set(pools.tolist())))
        self.device = torch.device(device)
        self.num_workers = num_workers
        self.channels_last = channels_last
        self.image_size = image_size
        if decode not in DECODE_CHOICES:
            raise ValueError(f"decode must be one of {DECODE_CHOICES}, got {decode!r}")
        self.decode = ("device" if self.device.type == "cuda" else "cpu") if decode == "auto" \
            else decode
        paths = np.empty(len(self.indices), dtype=object)
        labels = np.empty(len(self.indices), dtype=np.int64)
        classes = None
        for name in sorted(set(pools.tolist())):
            # scanned once (1.28M files for ImageNet); ``folder``: the source's own listing
            folder = (folder_of or image_folder)(self.root, name)
            if classes is not None and folder.classes != classes:
                raise ValueError(f"the class folders of {self.root / name} differ from those "
                                 f"of the other pools under {self.root}: labels would not "
                                 "agree; every pool needs the same class folders")
            classes = folder.classes
            sel = np.flatnonzero(pools == name)
            idx = self.indices[sel]
            _check_indices(idx, len(folder.samples), self.root / name)
            paths[sel] = [folder.samples[i][0] for i in idx]
            labels[sel] = np.asarray(folder.targets, dtype=np.int64)[idx]
        # one numpy array of bytes, not a list of str: loader workers forked from this
        # process share it without touching 1.28M reference counts
        self.paths = np.array([os.fsencode(p) for p in paths], dtype=np.bytes_)
        self.y = torch.as_tensor(labels, dtype=torch.long)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self._files = _ImageFiles(self.paths, labels, image_size,
                                  encoded=self.decode == "device")
        self._loader = None
        self._sampler = _KeyBatches()

    def __len__(self) -> int:
        return len(self.indices)

    # ------------------------------------------------------------------ the loader
    def _loader_of(self):
        """The one loader of this set: persistent workers (started here, from the calling
        thread, before any background thread exists), batches of keys set per pass."""
        import torch

        if self._loader is None:
            workers = self.num_workers
            self._loader = torch.utils.data.DataLoader(
                self._files, batch_sampler=self._sampler, collate_fn=_collate,
                num_workers=workers, persistent_workers=workers > 0,
                pin_memory=self.device.type == "cuda" and self.decode == "cpu")
            if workers > 0:
                self._sampler.batches = []
                for _ in self._loader:  # an empty pass starts the workers now
                    pass
        return self._loader

    def _batches_of(self, keys_per_batch: list):
        """(images, labels) of each batch of keys: what the loader returns, decoded and
        finished on the device when decoding happens there."""
        loader = self._loader_of()
        self._sampler.batches = keys_per_batch
        for (xs, yb), keys in zip(loader, keys_per_batch):
            yield self._finish(xs, yb, keys)

    def _produce(self, keys_per_batch: list) -> Iterator:
        """The batches, prefetched by a background thread on CUDA (synchronously on the
        CPU)."""
        self._loader_of()  # start the workers in this thread
        if self.device.type == "cuda":
            return _prefetched(lambda: self._batches_of(keys_per_batch), self.device)
        return self._batches_of(keys_per_batch)

    # ------------------------------------------------------------------ decoding
    def _finish(self, xs, yb, keys):
        import torch

        yb = yb.to(self.device, non_blocking=True)
        if self.decode == "cpu":  # uint8 views from the workers
            xb = xs.to(self.device, non_blocking=True)
            return normalize_batch(xb, self.mean, self.std, self.channels_last), yb
        images = self._decode_on_device(_unpack(xs), keys)
        s = self.image_size
        out = torch.empty((len(images), 3, s, s), dtype=torch.float32, device=self.device)
        for i, (img, (view, _, seed, hflip)) in enumerate(zip(images, keys)):
            _, h, w = img.shape
            if view == "train":
                top, left, ch, cw, flip = view_params(seed, h, w, hflip)
                view = _resize_float(img[:, top:top + ch, left:left + cw], (s, s))
                out[i] = view.flip(-1) if flip else view
            else:
                rh, rw, top, left = eval_geometry(h, w, s)
                out[i] = _resize_float(img, (rh, rw))[:, top:top + s, left:left + s]
        return normalize_batch(out, self.mean, self.std, self.channels_last), yb

    def _decode_on_device(self, datas: list, keys) -> list:
        """Decode a batch of encoded files on the job's device: the JPEGs in one batched
        ``decode_jpeg`` call; a file the batched call cannot take (another format, a CMYK
        JPEG nvJPEG refuses) is decoded on its own, on the CPU if need be, then moved."""
        from torchvision.io import ImageReadMode, decode_jpeg

        import torch

        out: list = [None] * len(datas)
        jpeg = [i for i, d in enumerate(datas) if is_jpeg(d)]
        if jpeg:
            # nvJPEG writes its outputs on a stream of its own without waiting for the
            # caller's: the caching allocator may hand it a block that kernels queued on
            # this stream (the previous batch's resizes) still read (torchvision PR 9606).
            # Let them finish first; decode_jpeg itself returns after its stream is done.
            if self.device.type == "cuda":
                torch.cuda.current_stream(self.device).synchronize()
            try:
                decoded = decode_jpeg([datas[i] for i in jpeg], mode=ImageReadMode.RGB,
                                      device=self.device)
                for i, img in zip(jpeg, decoded):
                    out[i] = img
            except Exception:  # noqa: BLE001 - one file spoils the batch: one at a time
                for i in jpeg:
                    try:
                        out[i] = decode_jpeg(datas[i], mode=ImageReadMode.RGB,
                                             device=self.device)
                    except Exception:  # noqa: BLE001
                        pass
        for i, img in enumerate(out):
            if img is None:
                out[i] = decode_rgb(datas[i], self._files.path(keys[i][1])).to(self.device, non_blocking=True)
        return out

    # ------------------------------------------------------------------ passes
    def train_batches(self, batch_size: int, order_seed: int, augment: Augment, *,
                      skip: int = 0, shard: tuple[int, int] | None = None) -> Iterator:
        """An epoch in the seeded order (full batches only; one short batch if the set is
        smaller than a batch), from step ``skip`` on; under ``shard`` this rank's part of
        every global batch. Files of skipped steps are not read."""
        import torch

        n = len(self)
        steps = steps_per_epoch(n, batch_size)
        take = min(steps * batch_size, n)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(order_seed)).numpy()
        base = int(order_seed) << 32  # a sample's view: the epoch's seed and its position
        batches = []
        for step in range(skip, steps):
            lo = step * batch_size
            lo, hi = batch_part(lo, min(lo + batch_size, take), shard)
            batches.append([("train", int(perm[p]), base + p, bool(augment.hflip))
                            for p in range(lo, hi)])
        return self._produce(batches)

    def eval_batches(self, batch_size: int, shard: tuple[int, int] | None = None) -> Iterator:
        """Every image once, in the set's order (this rank's contiguous part under
        ``shard``): each file is read and decoded once per pass."""
        lo, hi = shard_range(len(self), shard)
        batches = [[("eval", i, 0, False) for i in range(s, min(s + batch_size, hi))]
                   for s in range(lo, hi, batch_size)]
        return self._produce(batches)
