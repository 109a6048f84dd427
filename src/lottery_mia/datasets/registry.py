"""The dataset registry: one file per dataset source in this package.

A source (:class:`DatasetSource`) declares what it is (:class:`SourceInfo`: classes,
channels, image size, its member and non-member pools and their sizes, the normalisation,
whether it uses the small-image network stem), where its files go under a root and how to
check them (:meth:`DatasetSource.check_root`, named in the DAG build's messages), how to read
every pool's labels (the membership split) and its images: ``storage = "memory"`` sources
hold a pool as one uint8 array (:meth:`DatasetSource.load_pool`, served by
:class:`lottery_mia.data.TensorImageSet`), ``"folder"`` sources are ImageFolder layouts read
by :class:`lottery_mia.data.FolderImageSet` (:meth:`DatasetSource.folder`).

A source has one or two *pools* of images. Members (the target's training set) are drawn
from its member pool, non-members (held-out data never trained on) from its non-member pool.
Every sample has one integer ``sample_id``: its position in the member pool, or the member
pool's size plus its position in the non-member pool (one-pool sources: its index).

The registry and the sources' modules import neither torch nor torchvision at module level:
the config reads them while the DAG is built (cluster jobs re-read the Snakefile). Adding a
dataset is one new module that subclasses :class:`DatasetSource` and registers it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..registry import Registry

__all__ = ["DATA_CHECKS", "DataNotFoundError", "SourceInfo", "DatasetSource", "DATASETS", "register_dataset",
           "dataset_source", "source_info", "check_root", "max_split_sizes"]


# The checks a source can declare for the ``check_data`` job (:func:`lottery_mia.jobs.split.
# check_data`), each with what it verifies.
DATA_CHECKS = {
    "labels": "every label is one of the source's classes",
    "pairs": "enough same-class member/non-member pairs for every attack sample size",
    "duplicates": "no image is both a member and a non-member (content hashes of every row; "
                  "a copied batch or split file fails, a few identical images are recorded)",
}


class DataNotFoundError(FileNotFoundError):
    """A dataset root is missing or incomplete; the message says where we looked and what to do."""


@dataclass(frozen=True)
class SourceInfo:
    name: str
    num_classes: int
    channels: int
    image_size: int  # side length fed to the network
    member_pool: str
    nonmember_pool: str
    member_pool_size: int  # standard sizes; the membership job checks the real files
    nonmember_pool_size: int
    small_images: bool  # use the small-image network stem (3x3 stride-1 conv, no max-pool)
    mean: tuple[float, ...]
    std: tuple[float, ...]


class DatasetSource:
    """One dataset source; subclasses set ``info`` and implement the readers."""

    info: SourceInfo
    storage = "memory"  # "memory": load_pool; "folder": an ImageFolder layout (folder)
    layout = ""  # what goes under the root, for the DAG build's messages
    downloadable = False  # ``download: true`` in the config may fetch it
    needs_root = True  # False: the files ship with a package (no ``root``)
    # The standard training augmentation (a recipe's ``augment`` when it sets none): the
    # keys of :class:`lottery_mia.recipe.Augment`.
    augment: dict = {}
    # False where a mirrored image is another class or no class of the dataset (digits):
    # a recipe or scoring that flips it is warned about while the DAG is built.
    mirror_keeps_class = True
    # What the ``check_data`` job verifies before any network trains (``DATA_CHECKS``).
    data_checks: tuple[str, ...] = ("labels", "pairs", "duplicates")

    def image_digests(self, root: Path | None, pool: str, indices) -> list[str]:
        """A content hash of each image ``indices`` of ``pool`` (the ``duplicates`` check):
        its decoded pixels for sources held in memory, its file's bytes for folders."""
        import hashlib

        import numpy as np

        indices = np.asarray(indices, dtype=np.int64)
        if self.storage == "folder":
            from ..io import log

            samples = self.folder(root, pool).samples
            out = []
            for k, i in enumerate(indices, 1):
                with open(samples[int(i)][0], "rb") as fh:
                    out.append(hashlib.blake2b(fh.read(), digest_size=16).hexdigest())
                if k % 100_000 == 0:
                    log(f"{self.name} {pool}: hashed {k:,} of {len(indices):,} files")
            return out
        x, _ = self.load_pool(root, pool)
        x = np.ascontiguousarray(x[indices])
        return [hashlib.blake2b(img.tobytes(), digest_size=16).hexdigest() for img in x]

    def thumbnails(self, root: Path | None, pool: str, indices, size: int = 8,
                   progress: int = 20_000):
        """The images ``indices`` of ``pool`` as float32 thumbnails in [0, 1]: each channel
        averaged over blocks to at most ``size`` x ``size`` pixels (an image no larger is
        kept as it is), flattened (n, channels x h x w). A model-free description of each
        input (the quantile attack's regressor reads them): decoded pixels for sources
        held in memory, each file decoded and box-resized for folders."""
        import numpy as np

        indices = np.asarray(indices, dtype=np.int64)
        if self.storage == "folder":
            from PIL import Image

            from ..io import log

            folder = self.folder(root, pool)  # its loader names a file it cannot read
            out = np.empty((len(indices), 3 * size * size), dtype=np.float32)
            for k, i in enumerate(indices):
                img = folder.loader(folder.samples[int(i)][0]).resize((size, size), Image.BOX)
                out[k] = np.asarray(img, dtype=np.float32).transpose(2, 0, 1).ravel() / 255.0
                if (k + 1) % progress == 0:
                    log(f"{self.name} {pool}: {k + 1:,} of {len(indices):,} thumbnails")
            return out
        x, _ = self.load_pool(root, pool)
        return block_mean(np.asarray(x[indices], dtype=np.float32) / 255.0, size)

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def one_pool(self) -> bool:
        """Members and non-members are drawn from one pool (no official split)."""
        return self.info.member_pool == self.info.nonmember_pool

    def check_root(self, root, key: str) -> Path | None:
        """The resolved root after checking its files (a :class:`DataNotFoundError` naming
        the config key ``key``, what is missing and how to provide it, otherwise)."""
        raise NotImplementedError

    @staticmethod
    def where(root) -> str:
        """``root`` as the messages write it (``<root>`` when not set)."""
        return str(root) if root is not None else "<root>"

    def how_to_provide(self, root: Path | None) -> str:
        return f"Provide {self.layout or 'the files of ' + self.name} under {self.where(root)}."

    def checked_root(self, root, key: str, wanted) -> Path:
        """``root`` resolved, when every ``(path under root, "file" | "dir")`` of ``wanted``
        is under it; the errors of an empty root or missing files otherwise."""
        if root is None or str(root) == "":
            raise empty_root_error(self, key)
        root = Path(root).expanduser()
        missing = [str(rel) for rel, kind in wanted
                   if not ((root / rel).is_file() if kind == "file" else (root / rel).is_dir())]
        if missing:
            raise self.incomplete(root, key, f"did not find {', '.join(missing)}")
        return root

    def incomplete(self, root, key: str, problems: str) -> DataNotFoundError:
        """The error of a root whose files are not all there (``problems``: what is not)."""
        return DataNotFoundError(f"dataset {self.name!r} is missing or incomplete under {root} "
                                 f"(from config key {key!r}): {problems}. "
                                 + self.how_to_provide(root))

    def download(self, root: Path) -> None:
        raise ValueError(f"dataset {self.name!r} cannot be downloaded; "
                         + self.how_to_provide(root))

    def pool_labels(self, root: Path | None) -> dict:
        """Pool name -> int64 labels of every image of that pool."""
        raise NotImplementedError

    def load_pool(self, root: Path | None, pool: str) -> tuple:
        """(uint8 N x C x H x W images, int64 labels) of one whole pool (memory sources)."""
        raise NotImplementedError(f"dataset {self.name!r} is not held in memory")

    def folder(self, root: Path, pool: str):
        """The ImageFolder-like listing of one pool (folder sources): ``samples`` (path,
        label), ``targets``, ``classes``."""
        raise NotImplementedError(f"dataset {self.name!r} is not an image folder")


def block_mean(x, size: int):
    """(n, c, h, w) images averaged over blocks to at most ``size`` x ``size`` (h and w
    cut to multiples of the block), flattened to (n, c x h' x w'), C-contiguous float32."""
    import numpy as np

    n, c, h, w = x.shape
    bh, bw = max(1, -(-h // size)), max(1, -(-w // size))
    hh, ww = h // bh, w // bw
    x = x[:, :, :hh * bh, :ww * bw].reshape(n, c, hh, bh, ww, bw).mean(axis=(3, 5))
    return np.ascontiguousarray(x.reshape(n, -1), dtype=np.float32)


DATASETS: Registry[DatasetSource] = Registry("dataset source", "datasets.<name>.source")


def register_dataset(cls):
    """Class decorator: register an instance of a :class:`DatasetSource` subclass."""
    DATASETS.register(cls.info.name, cls())
    return cls


def dataset_source(source: str) -> DatasetSource:
    if source not in DATASETS:
        raise ValueError(f"unknown dataset source {source!r}; choose one of "
                         f"{', '.join(DATASETS)}")
    return DATASETS[source]


def source_info(source: str) -> SourceInfo:
    return dataset_source(source).info


def max_split_sizes(source: str) -> tuple[int, int]:
    """The largest (members, non-members) a membership split of ``source`` can have.

    For a one-pool source both come from one pool, so together they cannot exceed its size.
    """
    info = source_info(source)
    return info.member_pool_size, info.nonmember_pool_size


def check_root(source: str, root: str | Path | None, key: str) -> Path | None:
    """Check that the files of ``source`` are under ``root``; raise a helpful error otherwise.

    ``key`` is the config key that holds the root (named in the message).
    Returns the resolved root (None for a source that ships with a package).
    """
    return dataset_source(source).check_root(root, key)


def empty_root_error(source: DatasetSource, key: str) -> DataNotFoundError:
    return DataNotFoundError(f"config key {key!r} is empty: dataset source {source.name!r} "
                             "needs a directory. " + source.how_to_provide(None))
