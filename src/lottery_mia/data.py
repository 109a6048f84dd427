"""Reading the images of a source and serving them to training and inference.

Small sources (digits, CIFAR) are held in memory as one uint8 tensor and, on CUDA, moved to
the device once; augmentation (random crop with zero padding, horizontal flip) then runs
batched on the device. ImageNet is read from an ImageFolder layout through a DataLoader.
"""

from __future__ import annotations

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


def member_and_test_sets(data: DataSpec, recipe, device) -> tuple:
    """The members (training set) and non-members (test set) of a membership table, read
    from the pool each row names (a reference model's members can come from any pool)."""
    import torch

    from .membership import read_membership

    table = read_membership(data.membership)
    mem = table[table["member"]]
    non = table[~table["member"]]
    channels_last = torch.device(device).type == "cuda"
    kw = dict(key=data.key, device=device, num_workers=recipe.num_workers,
              channels_last=channels_last)
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


class TensorImageSet:
    """A labelled image set held as one uint8 tensor, optionally on the GPU."""

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
        xb = as_model_input((xb.float() / 255.0 - self.mean) / self.std, self.channels_last)
        check_model_input(xb, self.channels_last)
        return xb

    def train_batches(self, batch_size: int, order_seed: int, augment: Augment) -> Iterator:
        import torch

        g = torch.Generator().manual_seed(order_seed)
        perm = torch.randperm(len(self), generator=g).to(self.device)
        # drop the last incomplete batch: a batch of 2 makes BatchNorm's statistics (over 1x1
        # maps in the last stage for small images) pure noise and destabilises training
        for start in range(0, steps_per_epoch(len(self), batch_size) * batch_size, batch_size):
            idx = perm[start:start + batch_size]
            xb = self.x[idx]
            xb = _augment(xb, augment, g)
            yield self._prep(xb), self.y[idx]

    def eval_batches(self, batch_size: int) -> Iterator:
        for start in range(0, len(self), batch_size):
            yield self._prep(self.x[start:start + batch_size]), self.y[start:start + batch_size]


def _augment(xb, augment: Augment, g):
    """Batched random crop (zero padding) and horizontal flip, drawn from generator ``g``."""
    import torch
    import torch.nn.functional as F

    n, c, h, w = xb.shape
    if augment.crop_padding > 0:
        p = augment.crop_padding
        padded = F.pad(xb, (p, p, p, p))
        oy = torch.randint(0, 2 * p + 1, (n,), generator=g).to(xb.device)
        ox = torch.randint(0, 2 * p + 1, (n,), generator=g).to(xb.device)
        rows = (oy[:, None] + torch.arange(h, device=xb.device)[None, :])  # n x h
        cols = (ox[:, None] + torch.arange(w, device=xb.device)[None, :])  # n x w
        bidx = torch.arange(n, device=xb.device)[:, None, None, None]
        cidx = torch.arange(c, device=xb.device)[None, :, None, None]
        xb = padded[bidx, cidx, rows[:, None, :, None], cols[:, None, None, :]]
    if augment.hflip:
        flip = (torch.rand(n, generator=g) < 0.5).to(xb.device)
        xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
    return xb


class FolderImageSet:
    """ImageNet-style images read from disk through a DataLoader (standard 224px recipe)."""

    def __init__(self, root, pool: str, indices: np.ndarray, mean, std, device="cpu",
                 num_workers: int = 4, channels_last=False, image_size: int = 224):
        import torch

        self.root, self.pool = Path(root), pool
        self.indices = np.asarray(indices, dtype=np.int64)
        self.mean, self.std = mean, std
        self.device = torch.device(device)
        self.num_workers = num_workers
        self.channels_last = channels_last
        self.image_size = image_size
        self.folder = _image_folder(self.root, pool)  # scanned once (1.28M files for ImageNet)
        _check_indices(self.indices, len(self.folder.targets), self.root / pool)
        self.y = torch.as_tensor(np.asarray(self.folder.targets)[self.indices], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.indices)

    def _loader(self, transform, batch_size, shuffle_seed=None):
        import copy

        import torch

        folder = copy.copy(self.folder)
        folder.transform = transform
        subset = torch.utils.data.Subset(folder, self.indices.tolist())
        gen = torch.Generator().manual_seed(shuffle_seed) if shuffle_seed is not None else None
        return torch.utils.data.DataLoader(
            subset, batch_size=batch_size, shuffle=shuffle_seed is not None, generator=gen,
            num_workers=self.num_workers, pin_memory=self.device.type == "cuda",
            persistent_workers=False, drop_last=shuffle_seed is not None and
            len(subset) >= batch_size,
        )

    def _move(self, xb, yb):
        xb = as_model_input(xb.to(self.device, non_blocking=True), self.channels_last)
        check_model_input(xb, self.channels_last)
        return xb, yb.to(self.device, non_blocking=True)

    def train_batches(self, batch_size: int, order_seed: int, augment: Augment) -> Iterator:
        from torchvision import transforms as T

        steps = [T.RandomResizedCrop(self.image_size)]
        if augment.hflip:
            steps.append(T.RandomHorizontalFlip())
        steps += [T.ToTensor(), T.Normalize(self.mean, self.std)]
        for xb, yb in self._loader(T.Compose(steps), batch_size, shuffle_seed=order_seed):
            yield self._move(xb, yb)

    def eval_batches(self, batch_size: int) -> Iterator:
        from torchvision import transforms as T

        tf = T.Compose([T.Resize(int(self.image_size * 256 / 224)), T.CenterCrop(self.image_size),
                        T.ToTensor(), T.Normalize(self.mean, self.std)])
        for xb, yb in self._loader(tf, batch_size):
            yield self._move(xb, yb)


def image_set(source: str, root, pool: str, indices, *, key: str, device="cpu",
              num_workers: int = 4, channels_last: bool = False):
    """The image set of ``indices`` of ``pool``, in memory when the source is small."""
    info = source_info(source)
    indices = np.asarray(indices, dtype=np.int64)
    if source == "imagenet":
        return FolderImageSet(check_root(source, root, key), pool, indices, info.mean, info.std,
                              device=device, num_workers=num_workers,
                              channels_last=channels_last, image_size=info.image_size)
    x, y = load_in_memory(source, root, pool, indices, key=key)
    return TensorImageSet(x, y, info.mean, info.std, device=device, channels_last=channels_last)


def rows_image_set(source: str, root, rows, *, key: str, device="cpu", num_workers: int = 4,
                   channels_last: bool = False):
    """The image set of membership-table ``rows`` (columns ``pool``, ``pool_index``), in
    their order, whichever pools they come from (a reference model's training half of the
    population pool spans the source's train and test pools)."""
    pools = rows["pool"].unique().tolist()
    kw = dict(key=key, device=device, num_workers=num_workers, channels_last=channels_last)
    if len(pools) == 1:
        return image_set(source, root, pools[0], rows["pool_index"].to_numpy(), **kw)
    if source == "imagenet":
        raise ValueError("a training set that spans ImageNet's train and val folders is not "
                         "supported yet (reference models on ImageNet); leave imagenet out "
                         "of the config key references.datasets")
    info = source_info(source)
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
