"""Dataset sources: what each supported dataset is, where its files live, how big it is.

This module imports neither torch nor torchvision: the Snakefile uses it to validate the
config at DAG-build time, and cluster jobs re-read the Snakefile.

A source has one or two *pools* of images. Members (the target's training set) are drawn
from its member pool, non-members (held-out data never trained on) from its non-member pool:

- CIFAR-10/100: members from the official ``train`` split, non-members from ``test``;
- ImageNet: members from ``train``, non-members from ``val``;
- digits (scikit-learn's bundled set, no official split): one pool ``all``; members and
  non-members are disjoint, stratified, seeded subsets of it.

Every sample has one integer ``sample_id``: its position in the member pool, or the member
pool's size plus its position in the non-member pool (digits: its index in the bundled set).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SOURCES = ("digits", "cifar10", "cifar100", "imagenet")


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
    small_images: bool  # use the small-image ResNet stem (3x3 stride-1 conv, no max-pool)
    mean: tuple[float, ...]
    std: tuple[float, ...]


SOURCE_INFO: dict[str, SourceInfo] = {
    "digits": SourceInfo("digits", 10, 1, 8, "all", "all", 1797, 1797, True, (0.5,), (0.5,)),
    "cifar10": SourceInfo(
        "cifar10", 10, 3, 32, "train", "test", 50_000, 10_000, True,
        (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
    ),
    "cifar100": SourceInfo(
        "cifar100", 100, 3, 32, "train", "test", 50_000, 10_000, True,
        (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762),
    ),
    "imagenet": SourceInfo(
        "imagenet", 1000, 3, 224, "train", "val", 1_281_167, 50_000, False,
        (0.485, 0.456, 0.406), (0.229, 0.224, 0.225),
    ),
}

CIFAR_FILES = {
    "cifar10": (
        "cifar-10-batches-py",
        [f"data_batch_{i}" for i in range(1, 6)],
        ["test_batch"],
    ),
    "cifar100": ("cifar-100-python", ["train"], ["test"]),
}


def source_info(source: str) -> SourceInfo:
    if source not in SOURCE_INFO:
        raise ValueError(f"unknown dataset source {source!r}; choose one of {', '.join(SOURCES)}")
    return SOURCE_INFO[source]


def max_split_sizes(source: str) -> tuple[int, int]:
    """The largest (members, non-members) a membership split of ``source`` can have.

    For digits both come from one pool, so together they cannot exceed its size.
    """
    info = source_info(source)
    return info.member_pool_size, info.nonmember_pool_size


def check_root(source: str, root: str | Path | None, key: str) -> Path | None:
    """Check that the files of ``source`` are under ``root``; raise a helpful error otherwise.

    ``key`` is the config key that holds the root (named in the message).
    Returns the resolved root (None for digits, which ships with scikit-learn).
    """
    if source == "digits":
        return None
    if root is None or str(root) == "":
        raise DataNotFoundError(
            f"config key {key!r} is empty: dataset source {source!r} needs a directory. "
            + _how_to_provide(source, None)
        )
    root = Path(root).expanduser()
    if source in CIFAR_FILES:
        folder, train_files, test_files = CIFAR_FILES[source]
        base = root / folder
        missing = [f for f in train_files + test_files if not (base / f).is_file()]
        if missing:
            raise DataNotFoundError(
                f"dataset {source!r} is missing or incomplete: looked in {base} "
                f"(from config key {key!r}) and did not find {', '.join(missing)}. "
                + _how_to_provide(source, root)
            )
        return root
    if source == "imagenet":
        problems = []
        for split in ("train", "val"):
            d = root / split
            if not d.is_dir():
                problems.append(f"no directory {d}")
            elif not any(p.is_dir() for p in d.iterdir()):
                problems.append(f"{d} has no class sub-directories")
        if problems:
            raise DataNotFoundError(
                f"dataset 'imagenet' is missing or incomplete under {root} (from config key "
                f"{key!r}): {'; '.join(problems)}. " + _how_to_provide(source, root)
            )
        return root
    raise ValueError(f"unknown dataset source {source!r}")


def _how_to_provide(source: str, root: Path | None) -> str:
    where = str(root) if root is not None else "<root>"
    if source in CIFAR_FILES:
        folder = CIFAR_FILES[source][0]
        return (
            f"Provide the python-format CIFAR archive extracted as {where}/{folder}/ "
            f"(from https://www.cs.toronto.edu/~kriz/cifar.html), or set "
            f"'download: true' for this dataset to let torchvision fetch it."
        )
    return (
        f"Provide ImageNet in ImageFolder layout: {where}/train/<wnid>/*.JPEG and "
        f"{where}/val/<wnid>/*.JPEG (torchvision.datasets.ImageNet prepares this layout "
        f"from the official ILSVRC2012 archives). ImageNet cannot be downloaded automatically."
    )
