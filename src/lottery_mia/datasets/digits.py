"""``digits``: scikit-learn's bundled 8 x 8 handwritten digits (1797 images, 10 classes), the
embedded default data: no download, no root. It has no official split: one pool ``all``,
members and non-members are disjoint, stratified, seeded subsets of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .registry import DatasetSource, SourceInfo, register_dataset


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


@register_dataset
class Digits(DatasetSource):
    info = SourceInfo("digits", 10, 1, 8, "all", "all", 1797, 1797, True, (0.5,), (0.5,))
    augment = {}  # none: the networks fit their members, as the paper's do
    mirror_keeps_class = False  # a mirrored 2, 3, 4, 5, 7 or 9 is no digit
    layout = "nothing: scikit-learn ships it"
    needs_root = False

    def check_root(self, root, key: str):
        return None

    def pool_labels(self, root) -> dict:
        return {"all": digits_arrays()[1]}

    def load_pool(self, root, pool: str) -> tuple:
        images, y = digits_arrays()
        return np.rint(images * (255.0 / 16.0)).astype(np.uint8)[:, None, :, :], y
