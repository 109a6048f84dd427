"""``tinyimagenet``: Tiny-ImageNet-200 (64 x 64 RGB, 200 ImageNet classes), the official zip
(http://cs231n.stanford.edu/tiny-imagenet-200.zip) extracted under the root:

    <root>/tiny-imagenet-200/wnids.txt                      the 200 wnids, one a line
    <root>/tiny-imagenet-200/train/<wnid>/images/*.JPEG     500 per class (100,000)
    <root>/tiny-imagenet-200/val/images/*.JPEG              10,000
    <root>/tiny-imagenet-200/val/val_annotations.txt        file name, wnid, bbox (tabs)

Members come from ``train``, non-members from ``val`` (the ``test`` images have no labels
and are not used). The class index of a wnid is its position among the *sorted* wnids of
wnids.txt (torchvision's ImageFolder convention, not the file's own order). A pool's order
is fixed: train, class by class in that order, each class's files sorted by name; val, its
files sorted by name. :meth:`TinyImageNet.pool_labels` reads the listings only (no image is
decoded) and gives the labels in the order :meth:`TinyImageNet.load_pool` gives the images.

Held in memory (``storage = "memory"``): every job that reads a pool decodes all of its
JPEGs with PIL into one uint8 N x 3 x 64 x 64 array (the train pool: 100,000 files, 1.2 GB).
Measured with the synthetic fixture of tests/test_datasets.py scaled up (1,000 and 3,000
random-pixel 64 x 64 JPEGs, PIL's default quality 75, files in the page cache, one core of
the 2-core development machine): 0.08 to 0.13 ms per image, so about 10 s (9 to 13 s) per
job for the train pool and about 1 s for val, plus reading about 200 MB from a cold disk.
Threads do not help (PIL's per-file work holds the GIL: 2 threads were no faster, 4 slower).
Every image must be 64 x 64: another size is refused naming the file (nothing is resized).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .registry import DataNotFoundError, DatasetSource, SourceInfo, register_dataset

FOLDER = "tiny-imagenet-200"
URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
SIZE = 64
_JPEG = (".jpeg", ".jpg")


def _jpegs(folder: Path) -> list[str]:
    """The JPEG file names in ``folder``, sorted."""
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if e.name.lower().endswith(_JPEG) and e.is_file())


@register_dataset
class TinyImageNet(DatasetSource):
    info = SourceInfo("tinyimagenet", 200, 3, SIZE, "train", "val", 100_000, 10_000, True,
                      (0.4802, 0.4481, 0.3975), (0.2770, 0.2691, 0.2821))
    augment = {"crop_padding": 8, "hflip": True}
    layout = (f"{FOLDER}/ (the official Tiny-ImageNet-200 zip extracted: wnids.txt, "
              "train/<wnid>/images/*.JPEG, val/images/*.JPEG and val/val_annotations.txt)")

    def check_root(self, root, key: str):
        return self.checked_root(root, key, [
            (f"{FOLDER}/wnids.txt", "file"), (f"{FOLDER}/train", "dir"),
            (f"{FOLDER}/val/images", "dir"), (f"{FOLDER}/val/val_annotations.txt", "file")])

    def how_to_provide(self, root) -> str:
        where = self.where(root)
        return (
            f"Download {URL} and extract it under {where}, so that "
            f"{where}/{FOLDER}/wnids.txt, {where}/{FOLDER}/train/<wnid>/images/*.JPEG, "
            f"{where}/{FOLDER}/val/images/*.JPEG and {where}/{FOLDER}/val/val_annotations.txt "
            "exist. Tiny-ImageNet cannot be downloaded automatically."
        )

    # ------------------------------------------------------------------ listings
    def classes(self, root) -> list[str]:
        """The wnids of wnids.txt, sorted: a wnid's class index is its position here."""
        path = Path(root) / FOLDER / "wnids.txt"
        try:
            wnids = [w.strip() for w in path.read_text().splitlines() if w.strip()]
        except (OSError, UnicodeDecodeError) as err:
            raise ValueError(f"Tiny-ImageNet's {path} cannot be read ({type(err).__name__}: "
                             f"{err}); replace it with the one from {URL}") from None
        dup = sorted({w for w in wnids if wnids.count(w) > 1})
        if not wnids or dup or len(wnids) > self.info.num_classes:
            what = ("is empty" if not wnids else f"lists {dup[0]} more than once" if dup
                    else f"lists {len(wnids)} wnids, more than Tiny-ImageNet's "
                         f"{self.info.num_classes}")
            raise ValueError(f"Tiny-ImageNet's {path} {what}; replace it with the one from "
                             f"{URL}")
        return sorted(wnids)

    def listing(self, root, pool: str) -> tuple[list[Path], np.ndarray]:
        """(files, int64 labels) of one pool in its fixed order (see the module doc), from
        the folders and val_annotations.txt alone: no image is opened."""
        base = Path(root) / FOLDER
        wnids = self.classes(root)
        index = {w: i for i, w in enumerate(wnids)}
        files: list[Path] = []
        labels: list[int] = []
        if pool == "train":
            for w in wnids:
                d = base / "train" / w / "images"
                if not d.is_dir():
                    raise DataNotFoundError(
                        f"Tiny-ImageNet class {w} (listed in {base / 'wnids.txt'}) has no "
                        f"folder {d}: the extraction is incomplete. "
                        + self.how_to_provide(root))
                names = _jpegs(d)
                files += [d / n for n in names]
                labels += [index[w]] * len(names)
        elif pool == "val":
            images = base / "val" / "images"
            ann = base / "val" / "val_annotations.txt"
            fix = f"replace {ann} with the one from {URL}"
            wnid_of: dict[str, str] = {}
            try:
                lines = ann.read_text().splitlines()
            except (OSError, UnicodeDecodeError) as err:
                raise ValueError(f"Tiny-ImageNet's {ann} cannot be read "
                                 f"({type(err).__name__}: {err}); {fix}") from None
            for n, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                parts = line.split("\t")
                if len(parts) < 2 or parts[1].strip() not in index:
                    what = ("is not 'file<TAB>wnid<TAB>...'" if len(parts) < 2 else
                            f"names wnid {parts[1].strip()!r}, which is not in "
                            f"{base / 'wnids.txt'}")
                    raise ValueError(f"line {n} of Tiny-ImageNet's {ann} {what}; {fix}")
                wnid_of[parts[0].strip()] = parts[1].strip()
            names = _jpegs(images)
            unlabelled = [n for n in names if n not in wnid_of]
            if unlabelled:
                raise ValueError(f"Tiny-ImageNet validation image {images / unlabelled[0]} "
                                 f"(and {len(unlabelled) - 1} more) has no line in {ann}; {fix}")
            absent = sorted(set(wnid_of) - set(names))
            if absent:
                raise DataNotFoundError(
                    f"{ann} lists {absent[0]} (and {len(absent) - 1} more), which is not in "
                    f"{images}: the extraction is incomplete. " + self.how_to_provide(root))
            files = [images / n for n in names]
            labels = [index[wnid_of[n]] for n in names]
        else:
            raise ValueError(f"dataset 'tinyimagenet' has pools ['train', 'val'], not {pool!r}")
        return files, np.asarray(labels, dtype=np.int64)

    # ------------------------------------------------------------------ readers
    def pool_labels(self, root) -> dict:
        return {pool: self.listing(root, pool)[1] for pool in ("train", "val")}

    def load_pool(self, root, pool: str) -> tuple:
        """(uint8 N x 3 x 64 x 64, int64 labels) of one pool: every JPEG decoded with PIL."""
        files, labels = self.listing(root, pool)
        x = np.empty((len(files), 3, SIZE, SIZE), dtype=np.uint8)
        for i, path in enumerate(files):
            x[i] = decode_64(path)
        return x, labels


def decode_64(path: Path) -> np.ndarray:
    """One Tiny-ImageNet image as uint8 3 x 64 x 64 (RGB); an unreadable file or one of
    another size is a ValueError naming it."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            size = img.size
            if size == (SIZE, SIZE):
                arr = np.asarray(img.convert("RGB"))
    except Exception as err:  # noqa: BLE001 - every failure names the file
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise ValueError(f"Tiny-ImageNet image {path} cannot be read ({type(err).__name__}: "
                         f"{first}); replace it with the original from {URL}") from None
    if size != (SIZE, SIZE):
        raise ValueError(f"Tiny-ImageNet image {path} is {size[0]} x {size[1]}, not "
                         f"{SIZE} x {SIZE} (Tiny-ImageNet's size; images are not resized); "
                         f"replace it with the original from {URL}")
    return arr.transpose(2, 0, 1)
