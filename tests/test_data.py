"""Dataset sources from files the tests write: CIFAR python batches and an ImageFolder."""

import numpy as np
import pytest
import torch

from conftest import write_tiny_cifar, write_tiny_imagefolder
from lottery_mia.data import Augment, image_set, pool_labels
from lottery_mia.jobs.split import build_membership_split
from lottery_mia.membership import read_membership
from lottery_mia.datasets import DataNotFoundError, check_root


@pytest.mark.parametrize("source", ["cifar10", "cifar100"])
def test_cifar_batches_are_read_and_split(tmp_path, source):
    root = write_tiny_cifar(tmp_path / "data", source, n_train=40, n_test=20)
    labels = pool_labels(source, root, key=f"datasets.{source}.root")
    assert len(labels["train"]) == 40 and len(labels["test"]) == 20
    table = build_membership_split(source, root, key="k", download=False, members=30,
                                   nonmembers=20, scored_members=None, seed=0,
                                   output=tmp_path / "m.parquet")
    assert table.member.sum() == 30
    mem = read_membership(tmp_path / "m.parquet")
    mem = mem[~mem.member]
    ds = image_set(source, root, "test", mem.pool_index.to_numpy(), key="k")
    xb, yb = next(ds.eval_batches(8))
    assert xb.shape == (8, 3, 32, 32) and xb.dtype == torch.float32
    assert torch.equal(yb, torch.tensor(mem.label.to_numpy()[:8]))


def test_missing_or_incomplete_cifar_names_the_path_and_the_remedy(tmp_path):
    with pytest.raises(DataNotFoundError) as e:
        check_root("cifar10", tmp_path / "nothing", "datasets.cifar10.root")
    msg = str(e.value)
    assert str(tmp_path / "nothing" / "cifar-10-batches-py") in msg
    assert "datasets.cifar10.root" in msg and "download: true" in msg
    root = write_tiny_cifar(tmp_path / "data")
    (root / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataNotFoundError, match="data_batch_3"):
        check_root("cifar10", root, "k")
    with pytest.raises(DataNotFoundError, match="is empty"):
        check_root("cifar100", None, "datasets.c100.root")


def test_imagenet_imagefolder_layout(tmp_path):
    root = write_tiny_imagefolder(tmp_path / "imagenet", classes=3, per_class=4)
    labels = pool_labels("imagenet", root, key="datasets.imagenet.root")
    assert sorted(set(labels["train"])) == [0, 1, 2] and len(labels["val"]) == 12
    ds = image_set("imagenet", root, "val", np.arange(6), key="k", num_workers=0)
    xb, yb = next(ds.eval_batches(6))
    assert xb.shape == (6, 3, 224, 224)
    xt, _ = next(ds.train_batches(4, order_seed=0, augment=Augment(hflip=True)))
    assert xt.shape == (4, 3, 224, 224)
    (root / "val").rename(root / "validation")
    with pytest.raises(DataNotFoundError, match="val"):
        check_root("imagenet", root, "datasets.imagenet.root")


def test_digits_are_read_without_sklearn_datasets_and_equal_load_digits():
    import subprocess
    import sys
    from pathlib import Path

    import numpy as np
    from sklearn.datasets import load_digits

    from lottery_mia.datasets.digits import digits_arrays

    images, labels = digits_arrays()
    d = load_digits()
    assert np.array_equal(images, d.images) and np.array_equal(labels, d.target)
    assert labels.dtype == np.int64 and images.shape == (1797, 8, 8)
    src = Path(__file__).resolve().parents[1] / "src"
    code = (f"import sys; sys.path.insert(0, {str(src)!r}); "
            "from lottery_mia.datasets.digits import digits_arrays; digits_arrays(); "
            "assert 'sklearn.datasets' not in sys.modules, 'sklearn.datasets was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
