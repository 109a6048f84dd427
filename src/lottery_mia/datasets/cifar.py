"""``cifar10`` and ``cifar100``: the python-format CIFAR archives (32 x 32 RGB; members from
the official ``train`` split, non-members from ``test``), read without torchvision; torchvision
can download them (``download: true``)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from .registry import (DataNotFoundError, DatasetSource, SourceInfo, empty_root_error,
                       register_dataset)

CIFAR_FILES = {
    "cifar10": (
        "cifar-10-batches-py",
        [f"data_batch_{i}" for i in range(1, 6)],
        ["test_batch"],
    ),
    "cifar100": ("cifar-100-python", ["train"], ["test"]),
}


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


class _Cifar(DatasetSource):
    downloadable = True
    augment = {"crop_padding": 4, "hflip": True}  # the standard CIFAR recipe

    @property
    def files(self):
        return CIFAR_FILES[self.name]

    @property
    def layout(self) -> str:
        return f"{self.files[0]}/ (the python version of {self.name.upper().replace('R', 'R-')})"

    def check_root(self, root, key: str):
        if root is None or str(root) == "":
            raise empty_root_error(self, key)
        root = Path(root).expanduser()
        folder, train_files, test_files = self.files
        base = root / folder
        missing = [f for f in train_files + test_files if not (base / f).is_file()]
        if missing:
            raise DataNotFoundError(
                f"dataset {self.name!r} is missing or incomplete: looked in {base} "
                f"(from config key {key!r}) and did not find {', '.join(missing)}. "
                + self.how_to_provide(root)
            )
        return root

    def how_to_provide(self, root) -> str:
        where = self.where(root)
        return (
            f"Provide the python-format CIFAR archive extracted as {where}/{self.files[0]}/ "
            f"(from https://www.cs.toronto.edu/~kriz/cifar.html), or set "
            f"'download: true' for this dataset to let torchvision fetch it."
        )

    def download(self, root: Path) -> None:
        import torchvision

        cls = torchvision.datasets.CIFAR10 if self.name == "cifar10" else \
            torchvision.datasets.CIFAR100
        Path(root).mkdir(parents=True, exist_ok=True)
        cls(str(root), train=True, download=True)
        cls(str(root), train=False, download=True)

    def pool_labels(self, root) -> dict:
        return {pool: self.load_pool(root, pool)[1] for pool in ("train", "test")}

    def load_pool(self, root, pool: str) -> tuple:
        """Read CIFAR's python-format batches: (uint8 N x 3 x 32 x 32, int64 labels)."""
        folder, train_files, test_files = self.files
        files = train_files if pool == "train" else test_files
        xs, ys = [], []
        label_key = "labels" if self.name == "cifar10" else "fine_labels"
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
                raise ValueError(f"CIFAR batch {path} is corrupt or not a {self.name} batch "
                                 f"({type(err).__name__}: {first}); {fix}") from None
            if len(x) != len(y):
                raise ValueError(f"CIFAR batch {path} has {len(x)} images but {len(y)} "
                                 f"labels; {fix}")
            classes = self.info.num_classes
            bad = (y < 0) | (y >= classes)
            if bad.any():
                raise ValueError(f"CIFAR batch {path} has label {int(y[bad][0])} (and "
                                 f"{int(bad.sum()) - 1} more) outside the {classes} classes "
                                 f"of {self.name} (0..{classes - 1}): it is not a {self.name} "
                                 f"batch; {fix}")
            xs.append(x)
            ys.append(y)
        return np.concatenate(xs), np.concatenate(ys)


@register_dataset
class Cifar10(_Cifar):
    info = SourceInfo("cifar10", 10, 3, 32, "train", "test", 50_000, 10_000, True,
                      (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))


@register_dataset
class Cifar100(_Cifar):
    info = SourceInfo("cifar100", 100, 3, 32, "train", "test", 50_000, 10_000, True,
                      (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
