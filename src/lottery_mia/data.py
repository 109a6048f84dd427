"""Reading the images of a source and serving them to training and inference.

Small sources (digits, CIFAR) are held in memory as one uint8 tensor and, on CUDA, moved to
the device once; an epoch's augmentation (order, random crop with zero padding, horizontal
flip) is drawn on the device before the epoch, and each step only gathers from it
(:class:`TensorImageSet`). ImageNet is read from ImageFolder layouts through a DataLoader
whose persistent workers hand over uint8 only, with the JPEGs decoded on the GPU when there
is one (:class:`FolderImageSet`).
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .sources import CIFAR_FILES, check_root, source_info


from .recipe import Augment  # noqa: E402  (re-exported: the batch producer's augmentation)


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
def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits: (1797 x 8 x 8 float pixels in 0..16, int64 labels).

    Read straight from the CSV that ``sklearn.datasets.load_digits`` parses, without
    importing ``sklearn.datasets`` (about 2 s per job, paid by every training and scoring job
    of the default run); the same values as ``load_digits()`` (tested)."""
    import gzip
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    for base in (spec.submodule_search_locations or []) if spec else []:
        csv = Path(base) / "datasets" / "data" / "digits.csv.gz"
        if csv.exists():
            with gzip.open(csv, "rt") as fh:
                data = np.loadtxt(fh, delimiter=",")
            return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits  # another layout: let scikit-learn find it

    d = load_digits()
    return d.images, d.target.astype(np.int64)


def pool_labels(source: str, root: str | Path | None, *, key: str, download: bool = False
                ) -> dict[str, np.ndarray]:
    """Labels of every image in each pool of ``source`` (pool name -> int64 array)."""
    if source == "digits":
        return {"all": digits_arrays()[1]}
    root = _ensure(source, root, key, download)
    if source in CIFAR_FILES:
        return {pool: _read_cifar(source, root, pool)[1] for pool in ("train", "test")}
    return {pool: np.asarray(_image_folder(root, pool).targets, dtype=np.int64)
            for pool in ("train", "val")}


def _ensure(source: str, root, key: str, download: bool) -> Path:
    if download and source in CIFAR_FILES:
        import torchvision

        cls = torchvision.datasets.CIFAR10 if source == "cifar10" else torchvision.datasets.CIFAR100
        Path(root).mkdir(parents=True, exist_ok=True)
        cls(str(root), train=True, download=True)
        cls(str(root), train=False, download=True)
    return check_root(source, root, key)  # type: ignore[return-value]


def _read_cifar(source: str, root: Path, pool: str) -> tuple[np.ndarray, np.ndarray]:
    """Read CIFAR's python-format batches: (uint8 N x 3 x 32 x 32, int64 labels)."""
    folder, train_files, test_files = CIFAR_FILES[source]
    files = train_files if pool == "train" else test_files
    xs, ys = [], []
    label_key = "labels" if source == "cifar10" else "fine_labels"
    for name in files:
        path = Path(root) / folder / name
        fix = ("replace it with the original file from the CIFAR archive (or delete the "
               "folder and set download: true)")
        try:
            with open(path, "rb") as fh:
                entry = _CifarUnpickler(fh, encoding="latin1").load()
            x = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            y = np.asarray(entry[label_key], dtype=np.int64)
        except Exception as err:  # noqa: BLE001 - every failure names the file
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            raise ValueError(f"CIFAR batch {path} is corrupt or not a {source} batch "
                             f"({type(err).__name__}: {first}); {fix}") from None
        if len(x) != len(y):
            raise ValueError(f"CIFAR batch {path} has {len(x)} images but {len(y)} labels; {fix}")
        classes = source_info(source).num_classes
        bad = (y < 0) | (y >= classes)
        if bad.any():
            raise ValueError(f"CIFAR batch {path} has label {int(y[bad][0])} (and "
                             f"{int(bad.sum()) - 1} more) outside the {classes} classes of "
                             f"{source} (0..{classes - 1}): it is not a {source} batch; {fix}")
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


class _CifarUnpickler(pickle.Unpickler):
    """CIFAR's python-format batches are pickles: the one file format the pipeline reads with
    ``pickle``, because it is the dataset's own. Only the classes a batch needs (numpy arrays
    and plain containers) can be loaded; any other global, such as a planted ``os.system``
    payload, is refused instead of run."""

    _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar"), ("builtins", "bytes")}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name} (only numpy arrays and "
                                     "plain lists/dicts belong in a CIFAR batch)")


def _image_folder(root: Path, pool: str):
    import torchvision

    return torchvision.datasets.ImageFolder(str(Path(root) / pool), loader=_load_image)


def _load_image(path: str):
    """Read one image as RGB; a broken file raises an error that names it."""
    from PIL import Image

    try:
        with open(path, "rb") as fh:
            img = Image.open(fh)
            return img.convert("RGB")
    except Exception as err:  # noqa: BLE001 - every failure names the file
        raise ValueError(f"image {path} cannot be read ({type(err).__name__}: "
                         f"{str(err).splitlines()[0][:200] if str(err) else ''}); replace or "
                         "delete it") from None


def load_in_memory(source: str, root, pool: str, indices: np.ndarray, *, key: str
                   ) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N x C x H x W) and labels of ``indices`` of one pool of a small source."""
    if source == "digits":
        images, y = digits_arrays()
        x = np.rint(images * (255.0 / 16.0)).astype(np.uint8)[:, None, :, :]
    else:
        x, y = _read_cifar(source, check_root(source, root, key), pool)  # type: ignore[arg-type]
    _check_indices(np.asarray(indices), len(y), f"{source} pool {pool!r} (from {key})")
    return x[indices], y[indices]


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
def steps_per_epoch(n: int, batch_size: int) -> int:
    """Training steps per epoch: full batches only (one short batch if n < batch_size)."""
    return max(n // batch_size, 1)


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
            from .distributed import broadcast_from_rank0, world_size

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


# --------------------------------------------------------------------------- image files
DECODE_CHOICES = ("auto", "cpu", "device")
RESIZE_RATIO = 256 / 224  # eval: resize the short side to 256 for a 224 centre crop
RRC_SCALE, RRC_RATIO = (0.08, 1.0), (3 / 4, 4 / 3)


def read_image_bytes(path) -> "object":
    """The encoded bytes of an image file as a 1-D uint8 tensor; an unreadable file raises
    an error that names it."""
    import torch

    try:
        return torch.from_numpy(np.fromfile(str(path), dtype=np.uint8))
    except Exception as err:  # noqa: BLE001 - every failure names the file
        raise ValueError(f"image {path} cannot be read ({type(err).__name__}: "
                         f"{str(err).splitlines()[0][:200] if str(err) else ''}); replace or "
                         "delete it") from None


def decode_rgb(data, path):
    """A uint8 3 x H x W RGB image from encoded bytes (JPEG, PNG, ... via torchvision's
    libjpeg-turbo/libpng decoders); what they cannot read goes to PIL, whose failure names
    the file."""
    from torchvision.io import ImageReadMode, decode_image

    try:
        return decode_image(data, mode=ImageReadMode.RGB)
    except Exception:  # noqa: BLE001 - a format torchvision lacks, or a broken file
        import torch

        return torch.from_numpy(np.asarray(_load_image(str(path)))).permute(2, 0, 1)


def is_jpeg(data) -> bool:
    """JPEG's start-of-image marker (what the GPU decoder reads)."""
    return data.numel() > 3 and bool(data[0] == 0xFF) and bool(data[1] == 0xD8)


def view_params(seed: int, h: int, w: int, hflip: bool) -> tuple[int, int, int, int, bool]:
    """RandomResizedCrop's box (top, left, height, width; torchvision's algorithm: scale
    0.08-1, aspect ratio 3/4-4/3, 10 tries, then a central crop) and the flip, drawn from a
    generator of its own seeded by ``seed``: the view of a sample depends on the epoch's
    seed and its position in the epoch only, never on the loader's worker or the rank."""
    import math
    import random

    rng = random.Random(seed)
    area = h * w
    lo, hi = math.log(RRC_RATIO[0]), math.log(RRC_RATIO[1])
    box = None
    for _ in range(10):
        target = area * rng.uniform(*RRC_SCALE)
        aspect = math.exp(rng.uniform(lo, hi))
        cw = int(round(math.sqrt(target * aspect)))
        ch = int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            box = (rng.randint(0, h - ch), rng.randint(0, w - cw), ch, cw)
            break
    if box is None:  # torchvision's fallback: the central crop of a clamped aspect ratio
        ratio = w / h
        if ratio < RRC_RATIO[0]:
            cw, ch = w, int(round(w / RRC_RATIO[0]))
        elif ratio > RRC_RATIO[1]:
            cw, ch = int(round(h * RRC_RATIO[1])), h
        else:
            cw, ch = w, h
        box = ((h - ch) // 2, (w - cw) // 2, ch, cw)
    flip = hflip and rng.random() < 0.5
    return (*box, flip)


def eval_geometry(h: int, w: int, size: int) -> tuple[int, int, int, int]:
    """Resize(short side to size x 256/224) then CenterCrop(size), as torchvision computes
    them: (resized height, resized width, crop top, crop left)."""
    short = int(size * RESIZE_RATIO)
    if h <= w:
        rh, rw = short, int(short * w / h)
    else:
        rh, rw = int(short * h / w), short
    return rh, rw, int(round((rh - size) / 2.0)), int(round((rw - size) / 2.0))


def _train_view_uint8(img, seed: int, size: int, hflip: bool):
    """The training view of a uint8 CPU image (crop, antialiased bilinear resize in uint8,
    flip): what a loader worker returns."""
    from torchvision.transforms.v2 import functional as TF

    _, h, w = img.shape
    top, left, ch, cw, flip = view_params(seed, h, w, hflip)
    out = TF.resize(img[:, top:top + ch, left:left + cw], [size, size], antialias=True)
    return out.flip(-1) if flip else out


def _eval_view_uint8(img, size: int):
    from torchvision.transforms.v2 import functional as TF

    _, h, w = img.shape
    rh, rw, top, left = eval_geometry(h, w, size)
    out = TF.resize(img, [rh, rw], antialias=True)
    return out[:, top:top + size, left:left + size]


def _resize_float(img, size_hw):
    import torch.nn.functional as F

    return F.interpolate(img[None].float(), size=size_hw, mode="bilinear", antialias=True,
                         align_corners=False)[0]


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
    if xs[0].dim() == 1:  # encoded files: sizes differ, a list
        return list(xs), labels
    return torch.stack(xs), labels


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
                 decode: str = "auto"):
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
            folder = _image_folder(self.root, name)  # scanned once (1.28M files for ImageNet)
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
        images = self._decode_on_device(xs, keys)
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

        out: list = [None] * len(datas)
        jpeg = [i for i, d in enumerate(datas) if is_jpeg(d)]
        if jpeg:
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


def _prefetched(make_batches, device, depth: int = 3) -> Iterator:
    """The batches of ``make_batches()``, made ``depth`` ahead by a background thread (on
    CUDA, on a side stream: decode, crop and resize overlap the training step). On CUDA a
    batch is handed over with an event the consumer's stream waits on, and recorded on
    that stream so the allocator never reuses its memory early. The thread's errors are
    raised here; closing the iterator early stops the thread."""
    import queue
    import threading

    import torch

    cuda = torch.device(device).type == "cuda"
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce(stream) -> None:
        batches = make_batches()
        try:
            for xb, yb in batches:
                event = None
                if stream is not None:
                    event = torch.cuda.Event()
                    event.record(stream)
                if not put((xb, yb, event)):
                    return
        finally:
            batches.close()
        put(done)

    def work() -> None:
        try:
            if cuda:
                with torch.cuda.device(device):
                    stream = torch.cuda.Stream(device)
                    with torch.cuda.stream(stream):
                        produce(stream)
            else:
                produce(None)
        except BaseException as err:  # noqa: BLE001 - handed to the consumer
            put(err)

    thread = threading.Thread(target=work, name="lottery-mia-batches", daemon=True)
    thread.start()
    try:
        current = torch.cuda.current_stream(device) if cuda else None
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            xb, yb, event = item
            if event is not None:
                current.wait_event(event)
                xb.record_stream(current)
                yb.record_stream(current)
            yield xb, yb
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get(timeout=0.1)
            except queue.Empty:
                pass
        thread.join()


def image_set(source: str, root, pool: str, indices, *, key: str, device="cpu",
              num_workers: int = 4, channels_last: bool = False, decode: str = "auto"):
    """The image set of ``indices`` of ``pool``, in memory when the source is small."""
    info = source_info(source)
    indices = np.asarray(indices, dtype=np.int64)
    if source == "imagenet":
        return FolderImageSet(check_root(source, root, key), pool, indices, info.mean, info.std,
                              device=device, num_workers=num_workers,
                              channels_last=channels_last, image_size=info.image_size,
                              decode=decode)
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
    info = source_info(source)
    if source == "imagenet":  # one set over both folders, each row read from its own
        return FolderImageSet(check_root(source, root, key), rows["pool"].to_numpy(),
                              rows["pool_index"].to_numpy(), info.mean, info.std,
                              device=device, num_workers=num_workers,
                              channels_last=channels_last, image_size=info.image_size,
                              decode=decode)
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
