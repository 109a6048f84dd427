"""``svhn``: the Street View House Numbers' cropped digits (format 2: 32 x 32 RGB, 10
classes) in torchvision's layout, ``<root>/train_32x32.mat`` and ``<root>/test_32x32.mat``
(MATLAB v5 files: ``X`` of shape (32, 32, 3, N) uint8, ``y`` of shape (N, 1) with labels
1..10, where 10 is the digit 0). Members come from the 73,257 ``train`` images, non-members
from the 26,032 ``test`` images (``extra_32x32.mat`` is not used). Read with
``scipy.io.loadmat``, labels mapped as torchvision maps them (10 -> 0); torchvision can
download the files (``download: true``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .registry import DatasetSource, SourceInfo, register_dataset

SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}
SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"


@register_dataset
class SVHN(DatasetSource):
    info = SourceInfo("svhn", 10, 3, 32, "train", "test", 73_257, 26_032, True,
                      (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970))
    augment = {"crop_padding": 4, "hflip": False}
    mirror_keeps_class = False  # house-number digits
    layout = "train_32x32.mat and test_32x32.mat (SVHN's cropped digits, torchvision's layout)"
    downloadable = True

    def check_root(self, root, key: str):
        return self.checked_root(root, key, [(f, "file") for f in SVHN_FILES.values()])

    def how_to_provide(self, root) -> str:
        where = self.where(root)
        return (
            f"Provide SVHN's cropped digits as {where}/train_32x32.mat and "
            f"{where}/test_32x32.mat (format 2 from {SVHN_URL}), or set 'download: true' "
            "for this dataset to let torchvision fetch them."
        )

    def download(self, root: Path) -> None:
        import torchvision

        Path(root).mkdir(parents=True, exist_ok=True)
        for split in SVHN_FILES:
            torchvision.datasets.SVHN(str(root), split=split, download=True)

    def pool_labels(self, root) -> dict:
        return {pool: self._read(root, pool, images=False)[1] for pool in SVHN_FILES}

    def load_pool(self, root, pool: str) -> tuple:
        """(uint8 N x 3 x 32 x 32, int64 labels 0..9) of one pool."""
        return self._read(root, pool, images=True)

    def _read(self, root, pool: str, images: bool) -> tuple:
        """Read one .mat file (only its labels when ``images`` is false: loadmat skips
        ``X``); every failure is a ValueError naming the file and the fix."""
        from scipy.io import loadmat

        if pool not in SVHN_FILES:
            raise ValueError(f"dataset 'svhn' has pools {sorted(SVHN_FILES)}, not {pool!r}")
        path = Path(root) / SVHN_FILES[pool]
        fix = (f"replace it with the original {path.name} from {SVHN_URL} (or delete it and "
               "set download: true)")
        names = ["X", "y"] if images else ["y"]
        try:
            mat = loadmat(str(path), variable_names=names)
            missing = [n for n in names if n not in mat]
            if missing:
                raise KeyError(f"no variable {', '.join(missing)}")
            y = np.asarray(mat["y"])
            if y.ndim not in (1, 2) or (y.ndim == 2 and 1 not in y.shape):
                raise ValueError(f"'y' has shape {y.shape}, not (N, 1)")
            y = y.reshape(-1).astype(np.int64)
            x = None
            if images:
                x = np.asarray(mat["X"])
                if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.dtype != np.uint8:
                    raise ValueError(f"'X' is {x.dtype} of shape {x.shape}, not uint8 of shape "
                                     "(32, 32, 3, N)")
        except Exception as err:  # noqa: BLE001 - every failure names the file
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            raise ValueError(f"SVHN file {path} is corrupt or not SVHN's {path.name} "
                             f"({type(err).__name__}: {first}); {fix}") from None
        bad = (y < 1) | (y > 10)
        if bad.any():
            raise ValueError(f"SVHN file {path} has label {int(y[bad][0])} (and "
                             f"{int(bad.sum()) - 1} more) outside SVHN's 1..10 (10 is the "
                             f"digit 0): it is not SVHN's {path.name}; {fix}")
        y[y == 10] = 0  # as torchvision: the digit 0 is stored as 10
        if x is None:
            return None, y
        if x.shape[3] != len(y):
            raise ValueError(f"SVHN file {path} has {x.shape[3]} images but {len(y)} labels; "
                             f"{fix}")
        # (H, W, C, N) -> (N, C, H, W), as torchvision's SVHN
        return np.ascontiguousarray(np.transpose(x, (3, 2, 0, 1))), y
