"""``imagenet``: ILSVRC-2012 in ImageFolder layout (members from ``train``, non-members from
``val``, the validation images sorted into their class folders), read from disk by
:class:`lottery_mia.data.FolderImageSet` with the standard 224-px recipe. It cannot be
downloaded automatically."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .registry import DatasetSource, SourceInfo, empty_root_error, register_dataset


def load_image(path: str):
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


def image_folder(root: Path, pool: str):
    """torchvision's ImageFolder of ``root/pool`` (class folders of images)."""
    import torchvision

    return torchvision.datasets.ImageFolder(str(Path(root) / pool), loader=load_image)


@register_dataset
class ImageNet(DatasetSource):
    info = SourceInfo("imagenet", 1000, 3, 224, "train", "val", 1_281_167, 50_000, False,
                      (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    augment = {"hflip": True}  # and the random-resized crop every folder view takes
    # "duplicates" hashes the bytes of all 1.33M files (about 150 GB, streamed one file at
    # a time): 93 us a file from the page cache (2.1 min in all), about 5 min from a disk
    # reading 0.5 GB/s, once per dataset before the first network trains
    storage = "folder"
    layout = ("train/<wnid>/*.JPEG and val/<wnid>/*.JPEG (ILSVRC-2012 in ImageFolder "
              "layout, the validation images sorted into class folders)")

    def check_root(self, root, key: str):
        if root is None or str(root) == "":
            raise empty_root_error(self, key)
        root = Path(root).expanduser()
        problems = []
        for split in ("train", "val"):
            d = root / split
            if not d.is_dir():
                problems.append(f"no directory {d}")
            elif not any(p.is_dir() for p in d.iterdir()):
                problems.append(f"{d} has no class sub-directories")
        if problems:
            raise self.incomplete(root, key, "; ".join(problems))
        return root

    def how_to_provide(self, root) -> str:
        where = self.where(root)
        return (
            f"Provide ImageNet in ImageFolder layout: {where}/train/<wnid>/*.JPEG and "
            f"{where}/val/<wnid>/*.JPEG (torchvision.datasets.ImageNet prepares this layout "
            f"from the official ILSVRC2012 archives). ImageNet cannot be downloaded "
            "automatically."
        )

    def pool_labels(self, root) -> dict:
        return {pool: np.asarray(self.folder(root, pool).targets, dtype=np.int64)
                for pool in ("train", "val")}

    def folder(self, root: Path, pool: str):
        return image_folder(root, pool)
