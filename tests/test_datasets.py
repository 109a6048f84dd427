"""The svhn and tinyimagenet sources, from small files the tests write (SVHN's .mat files with
scipy, Tiny-ImageNet's JPEGs with PIL), read through the pipeline's own entry points; and
their ready configs (config/svhn.yaml, config/tinyimagenet.yaml) build their DAG without the
data."""

from __future__ import annotations

import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import ROOT, SRC, planned_jobs, run_snakemake

from lottery_mia.data import image_set, load_in_memory, pool_labels
from lottery_mia.datasets import DATASETS, DataNotFoundError, check_root, dataset_source

NEW = ("svhn", "tinyimagenet")


# --------------------------------------------------------------------------- fixtures
def write_tiny_svhn(root: Path, n_train: int = 30, n_test: int = 20, seed: int = 0) -> dict:
    """torchvision's SVHN layout: root/{train,test}_32x32.mat, ``X`` (32, 32, 3, N) uint8 and
    ``y`` (N, 1) with labels 1..10 (every label, 10 included). Returns what was written."""
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    written = {}
    for pool, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = (rng.permutation(n) % 10 + 1).astype(np.uint8).reshape(n, 1)
        savemat(str(root / f"{pool}_32x32.mat"), {"X": x, "y": y})
        written[pool] = (x, y)
    return written


WNIDS = ["n03000000", "n01000000", "n02000000"]  # not sorted: the index is the sorted order


def write_tiny_imagenet(root: Path, per_class: int = 3, n_val: int = 12, seed: int = 0) -> dict:
    """The official zip's layout under root/tiny-imagenet-200: wnids.txt (unsorted), 64 x 64
    JPEGs per class (one grayscale), val/images with val_annotations.txt (val_0 .. val_11:
    sorted by name, val_10 comes before val_2). Returns the expected (files, labels) per
    pool in the documented order."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    base = root / "tiny-imagenet-200"
    (base / "val" / "images").mkdir(parents=True, exist_ok=True)
    (base / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    index = {w: i for i, w in enumerate(sorted(WNIDS))}

    def save(path: Path, gray: bool = False):
        arr = rng.integers(0, 256, (64, 64) if gray else (64, 64, 3), dtype=np.uint8)
        Image.fromarray(arr).save(path, format="JPEG")

    train_files, train_labels = [], []
    for w in sorted(WNIDS):
        d = base / "train" / w / "images"
        d.mkdir(parents=True)
        names = sorted(f"{w}_{j}.JPEG" for j in range(per_class))
        for j, name in enumerate(names):
            save(d / name, gray=(w == WNIDS[0] and j == 0))
        (base / "train" / w / f"{w}_boxes.txt").write_text("")  # as in the zip: not an image
        train_files += [d / n for n in names]
        train_labels += [index[w]] * per_class
    lines, val_wnid = [], {}
    for i in range(n_val):
        name, w = f"val_{i}.JPEG", WNIDS[i % len(WNIDS)]
        save(base / "val" / "images" / name)
        lines.append(f"{name}\t{w}\t0\t0\t63\t63")
        val_wnid[name] = w
    (base / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    val_names = sorted(val_wnid)
    return {"train": (train_files, np.array(train_labels)),
            "val": ([base / "val" / "images" / n for n in val_names],
                    np.array([index[val_wnid[n]] for n in val_names]))}


def pil_pixels(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("RGB")).transpose(2, 0, 1)


# --------------------------------------------------------------------------- registry
def test_the_registry_lists_both_sources_with_their_facts():
    assert set(NEW) <= set(DATASETS)
    svhn, tin = dataset_source("svhn"), dataset_source("tinyimagenet")
    assert (svhn.info.num_classes, svhn.info.channels, svhn.info.image_size) == (10, 3, 32)
    assert (svhn.info.member_pool_size, svhn.info.nonmember_pool_size) == (73_257, 26_032)
    assert (tin.info.num_classes, tin.info.channels, tin.info.image_size) == (200, 3, 64)
    assert (tin.info.member_pool_size, tin.info.nonmember_pool_size) == (100_000, 10_000)
    assert svhn.info.small_images and tin.info.small_images
    assert svhn.storage == tin.storage == "memory"
    assert svhn.downloadable and not tin.downloadable
    assert (svhn.info.member_pool, svhn.info.nonmember_pool) == ("train", "test")
    assert (tin.info.member_pool, tin.info.nonmember_pool) == ("train", "val")


def test_importing_the_datasets_imports_no_torch_scipy_or_pil():
    code = (f"import sys; sys.path.insert(0, {str(SRC)!r})\n"
            "import lottery_mia.datasets, lottery_mia.datasets.svhn, "
            "lottery_mia.datasets.tinyimagenet\n"
            "bad = [m for m in ('torch', 'torchvision', 'scipy', 'PIL') if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --------------------------------------------------------------------------- svhn
def test_svhn_labels_and_images_round_trip(tmp_path):
    root = tmp_path / "svhn"
    written = write_tiny_svhn(root)
    key = "datasets.svhn.root"
    labels = pool_labels("svhn", root, key=key)
    assert set(labels) == {"train", "test"}
    for pool, (x_mat, y_mat) in written.items():
        want = y_mat.reshape(-1).astype(np.int64) % 10  # 10 is the digit 0
        assert labels[pool].dtype == np.int64 and np.array_equal(labels[pool], want)
        assert 0 in labels[pool] and labels[pool].max() == 9
        x, y = dataset_source("svhn").load_pool(root, pool)
        assert x.shape == (len(want), 3, 32, 32) and x.dtype == np.uint8
        assert x.flags.c_contiguous and np.array_equal(y, want)
        # x[n, c, h, w] is X[h, w, c, n] of the .mat file
        assert np.array_equal(x, x_mat.transpose(3, 2, 0, 1))
        assert x[5, 2, 7, 11] == x_mat[7, 11, 2, 5]
    idx = np.array([3, 0, 19, 7])
    x, y = load_in_memory("svhn", root, "test", idx, key=key)
    x_mat, y_mat = written["test"]
    assert np.array_equal(x, x_mat.transpose(3, 2, 0, 1)[idx])
    assert np.array_equal(y, y_mat.reshape(-1)[idx].astype(np.int64) % 10)


def test_svhn_missing_and_corrupt_files_are_named(tmp_path):
    root = tmp_path / "svhn"
    write_tiny_svhn(root)
    (root / "test_32x32.mat").unlink()
    with pytest.raises(DataNotFoundError) as e:
        pool_labels("svhn", root, key="datasets.svhn.root")
    msg = str(e.value)
    assert "did not find test_32x32.mat." in msg  # only the missing one
    assert "datasets.svhn.root" in msg and str(root) in msg and "download: true" in msg
    with pytest.raises(DataNotFoundError, match="is empty"):
        check_root("svhn", None, "datasets.svhn.root")

    write_tiny_svhn(root)
    (root / "train_32x32.mat").write_bytes(b"not a MATLAB file" * 10)
    with pytest.raises(ValueError, match="corrupt") as e:
        load_in_memory("svhn", root, "train", np.arange(2), key="k")
    assert str(root / "train_32x32.mat") in str(e.value) and "download: true" in str(e.value)

    from scipy.io import savemat

    x = np.zeros((32, 32, 3, 4), dtype=np.uint8)
    savemat(str(root / "train_32x32.mat"), {"X": x, "y": np.array([[1], [2], [11], [0]])})
    with pytest.raises(ValueError, match=r"label 11 \(and 1 more\) outside SVHN's 1\.\.10"):
        pool_labels("svhn", root, key="k")
    savemat(str(root / "train_32x32.mat"), {"y": np.array([[1], [2]])})  # no images
    with pytest.raises(ValueError, match="no variable X"):
        load_in_memory("svhn", root, "train", np.arange(2), key="k")


def test_svhn_download_asks_torchvision_for_both_splits(tmp_path, monkeypatch):
    import torchvision

    calls = []
    monkeypatch.setattr(torchvision.datasets, "SVHN",
                        lambda root, split, download: calls.append((root, split, download)))
    dataset_source("svhn").download(tmp_path / "svhn")
    assert calls == [(str(tmp_path / "svhn"), "train", True),
                     (str(tmp_path / "svhn"), "test", True)]


# --------------------------------------------------------------------------- tinyimagenet
def test_tinyimagenet_labels_and_images_agree_in_order(tmp_path, monkeypatch):
    root = tmp_path / "tin"
    expected = write_tiny_imagenet(root)
    key = "datasets.tinyimagenet.root"
    import PIL.Image

    def no_decoding(*a, **k):
        raise AssertionError("pool_labels opened an image")

    with monkeypatch.context() as m:  # the labels come from the listings alone
        m.setattr(PIL.Image, "open", no_decoding)
        labels = pool_labels("tinyimagenet", root, key=key)
    assert set(labels) == {"train", "val"}
    for pool, (files, want) in expected.items():
        assert labels[pool].dtype == np.int64 and np.array_equal(labels[pool], want)
        x, y = dataset_source("tinyimagenet").load_pool(root, pool)
        assert x.shape == (len(files), 3, 64, 64) and x.dtype == np.uint8
        assert np.array_equal(y, labels[pool])
        assert np.array_equal(x, np.stack([pil_pixels(f) for f in files]))
    # train: sorted wnids (n01, n02, n03), files by name; val: val_0, val_1, val_10, ...
    assert labels["train"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert [f.name for f in expected["val"][0]][:4] == ["val_0.JPEG", "val_1.JPEG",
                                                        "val_10.JPEG", "val_11.JPEG"]
    x, _ = dataset_source("tinyimagenet").load_pool(root, "train")
    gray = x[6]  # the grayscale JPEG of WNIDS[0] (class 2): three equal channels
    assert np.array_equal(gray[0], gray[1]) and np.array_equal(gray[1], gray[2])
    idx = np.array([11, 2, 5])
    xs, ys = load_in_memory("tinyimagenet", root, "val", idx, key=key)
    assert np.array_equal(ys, expected["val"][1][idx])
    assert np.array_equal(xs, np.stack([pil_pixels(expected["val"][0][i]) for i in idx]))


def test_tinyimagenet_missing_listings_and_bad_images_are_named(tmp_path):
    root = tmp_path / "tin"
    expected = write_tiny_imagenet(root)
    base = root / "tiny-imagenet-200"
    key = "datasets.tinyimagenet.root"
    for path in (base / "wnids.txt", base / "val" / "val_annotations.txt"):
        moved = path.with_suffix(".bak")
        path.rename(moved)
        with pytest.raises(DataNotFoundError) as e:
            pool_labels("tinyimagenet", root, key=key)
        msg = str(e.value)
        assert str(path) in msg and key in msg and "tiny-imagenet-200.zip" in msg
        moved.rename(path)
    with pytest.raises(DataNotFoundError, match="is empty"):
        check_root("tinyimagenet", "", key)

    from PIL import Image

    odd = expected["train"][0][4]
    Image.fromarray(np.zeros((48, 48, 3), dtype=np.uint8)).save(odd, format="JPEG")
    assert len(pool_labels("tinyimagenet", root, key=key)["train"]) == 9  # listing only
    with pytest.raises(ValueError, match=r"is 48 x 48, not 64 x 64") as e:
        load_in_memory("tinyimagenet", root, "train", np.arange(3), key=key)
    assert str(odd) in str(e.value)
    odd.write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(ValueError, match="cannot be read") as e:
        load_in_memory("tinyimagenet", root, "train", np.arange(3), key=key)
    assert str(odd) in str(e.value)

    ann = base / "val" / "val_annotations.txt"
    ann.write_text(ann.read_text().replace("n02000000", "n09999999", 1))
    with pytest.raises(ValueError, match=r"line 3 of .*n09999999.*not in"):
        pool_labels("tinyimagenet", root, key=key)
    (base / "train" / "n02000000").rename(base / "train" / "elsewhere")
    with pytest.raises(DataNotFoundError, match=r"n02000000.*no folder"):
        load_in_memory("tinyimagenet", root, "train", np.arange(3), key=key)


# --------------------------------------------------------------------------- the pipeline
def test_both_sources_split_and_serve_through_the_pipeline(tmp_path):
    import torch

    from lottery_mia.jobs.split import build_membership_split
    from lottery_mia.membership import read_membership

    write_tiny_svhn(tmp_path / "svhn")
    write_tiny_imagenet(tmp_path / "tin")
    for source, root, members, nonmembers, size in (("svhn", tmp_path / "svhn", 20, 10, 32),
                                                    ("tinyimagenet", tmp_path / "tin", 6, 6, 64)):
        out = tmp_path / f"{source}.parquet"
        build_membership_split(source, root, key="k", download=False, members=members,
                               nonmembers=nonmembers, scored_members=None, seed=0, output=out)
        table = read_membership(out)
        assert int(table.member.sum()) == members and int((~table.member).sum()) == nonmembers
        non = table[~table.member]
        ds = image_set(source, root, dataset_source(source).info.nonmember_pool,
                       non.pool_index.to_numpy(), key="k")
        xb, yb = next(ds.eval_batches(4))
        assert xb.shape == (4, 3, size, size) and xb.dtype == torch.float32
        assert torch.equal(yb, torch.tensor(non.label.to_numpy()[:4]))


# --------------------------------------------------------------------------- the configs
@pytest.fixture(scope="module")
def dry_runs(tmp_path_factory) -> dict:
    """``snakemake -n`` of each ready config, as tests/test_ready_configs.py runs the shipped ones
    (both at once: each takes seconds to build its DAG)."""
    dirs = {}
    for name in NEW:
        d = tmp_path_factory.mktemp(name)
        shutil.copy(ROOT / "config" / f"{name}.yaml", d / "config.yaml")
        dirs[name] = d
    with ThreadPoolExecutor(len(NEW)) as ex:
        procs = dict(zip(NEW, ex.map(lambda n: run_snakemake(dirs[n], "-n", "--cores", "8"),
                                     NEW)))
    return {n: p.stdout + p.stderr for n, p in procs.items()}


@pytest.mark.parametrize("name", NEW)
def test_the_ready_config_builds_its_dag_without_the_data(dry_runs, name):
    from lottery_mia.config import load_config
    from lottery_mia.plan import Plan

    cfg_dict = yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text())
    assert list(cfg_dict["datasets"]) == [name] and list(cfg_dict["training"]) == [name]
    assert cfg_dict["datasets"][name]["root"] == f"data/{name}"
    assert cfg_dict["replicates"] == [0, 1, 2]
    cfg = load_config(cfg_dict)
    assert set(Plan(cfg).grids) == {name}
    assert cfg.transfer.dataset == name and cfg.references.datasets == [name]
    sizes = cfg.sample_sizes(name)
    _, n_scored, n_non = cfg.datasets[name].sizes()
    assert max(sizes) <= 2 * min(n_scored, n_non)
    assert cfg.report.figure2_sample_size in sizes and cfg.transfer.sample_size in sizes

    out = dry_runs[name]
    jobs = planned_jobs(out)
    archs, seeds = len(cfg_dict["architectures"]), len(cfg_dict["replicates"])
    assert jobs["train_dense"] == archs * (seeds + cfg_dict["references"]["count"])
    assert jobs["fit_attack"] > 0 and jobs["membership_split"] == 1 and jobs["report"] == 1
    assert f"results/{name}/membership.parquet" in out
    assert f"datasets.{name}.root" in out  # the data is not there yet: said, not fatal
    assert ("download: true" in out) == (name == "svhn")


def test_tinyimagenet_cannot_be_set_to_download():
    from lottery_mia.config import load_config

    cfg = yaml.safe_load((ROOT / "config" / "tinyimagenet.yaml").read_text())
    cfg["datasets"]["tinyimagenet"]["download"] = True
    with pytest.raises(ValueError, match="cannot be downloaded"):
        load_config(cfg)


# --------------------------------------------------------------------------- declarations
def test_every_source_declares_a_valid_augmentation_and_its_data_checks():
    from lottery_mia.datasets import DATASETS
    from lottery_mia.datasets.registry import DATA_CHECKS
    from lottery_mia.recipe import Augment

    for name in DATASETS:
        src = DATASETS[name]
        Augment(**src.augment)  # keys and values of a recipe's augment
        assert set(src.data_checks) <= set(DATA_CHECKS), name
        assert {"labels", "pairs"} <= set(src.data_checks), name
    assert DATASETS["cifar10"].augment == {"crop_padding": 4, "hflip": True}
    assert not DATASETS["svhn"].mirror_keeps_class and not DATASETS["digits"].mirror_keeps_class


def test_a_recipe_without_augment_gets_its_datasets_and_flipping_digits_is_warned():
    import yaml

    from lottery_mia.config import load_config

    raw = yaml.safe_load((ROOT / "config" / "svhn.yaml").read_text())
    for rec in raw["training"]["svhn"].values():
        rec.pop("augment", None)
    cfg = load_config(raw)
    assert {r.augment.model_dump()["crop_padding"] for _, _, r in cfg.recipes()} == {4}
    assert not any("mirrored" in w for w in cfg.warnings())
    for rec in raw["training"]["svhn"].values():
        rec["augment"] = {"crop_padding": 0, "hflip": True}  # set: kept as it is
    cfg = load_config(raw)
    assert {r.augment.crop_padding for _, _, r in cfg.recipes()} == {0}
    (warning,) = [w for w in cfg.warnings() if "mirrored" in w]
    assert "training.svhn.resnet18.augment.hflip" in warning


@pytest.mark.parametrize("copy", [("test_batch", "data_batch_5"), ("data_batch_1", "test_batch")])
def test_a_cifar_folder_with_a_copied_batch_fails_the_data_check(tmp_path, copy):
    """Identical images on both sides of the split stop the run before any training."""
    import shutil

    from conftest import write_tiny_cifar
    from lottery_mia.jobs.split import build_membership_split, check_data

    root = write_tiny_cifar(tmp_path / "data", n_train=100, n_test=20)
    folder = root / "cifar-10-batches-py"
    kw = dict(key="datasets.cifar10.root", download=False, members=40, nonmembers=20,
              scored_members=None, seed=0)
    build_membership_split("cifar10", root, output=tmp_path / "m.parquet", **kw)
    good = check_data(membership_path=tmp_path / "m.parquet", source="cifar10",
                      sample_paths=[], sample_sizes=[], output=tmp_path / "c.json", root=root,
                      key="datasets.cifar10.root")
    assert good["duplicates"]["member_nonmember_overlap"] == 0 and "duplicates" in good["checks"]
    shutil.copy(folder / copy[0], folder / copy[1])
    build_membership_split("cifar10", root, output=tmp_path / "m2.parquet", **kw)
    with pytest.raises(ValueError, match=r"non-members of .*m2.parquet are pixel-for-pixel "
                                         r"images of members too.*restore the original"):
        check_data(membership_path=tmp_path / "m2.parquet", source="cifar10", sample_paths=[],
                   sample_sizes=[], output=tmp_path / "c2.json", root=root,
                   key="datasets.cifar10.root")
    assert not (tmp_path / "c2.json").exists()


def test_a_few_identical_images_are_recorded_not_fatal(tmp_path):
    """Real datasets hold a few identical images; below 1% of the smaller side they are
    recorded (with their sample ids) in the data checks."""
    import pickle

    from conftest import write_tiny_cifar
    from lottery_mia.jobs.split import build_membership_split, check_data

    root = write_tiny_cifar(tmp_path / "data", n_train=500, n_test=200)
    folder = root / "cifar-10-batches-py"
    with open(folder / "data_batch_1", "rb") as fh:
        train = pickle.load(fh)
    with open(folder / "test_batch", "rb") as fh:
        test = pickle.load(fh)
    test["data"][0] = train["data"][0]  # one test image is a training image
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump(test, fh)
    build_membership_split("cifar10", root, key="datasets.cifar10.root", download=False,
                           members=500, nonmembers=200, scored_members=None, seed=0,
                           output=tmp_path / "m.parquet")
    got = check_data(membership_path=tmp_path / "m.parquet", source="cifar10", sample_paths=[],
                     sample_sizes=[], output=tmp_path / "c.json", root=root,
                     key="datasets.cifar10.root")["duplicates"]
    assert got["member_nonmember_overlap"] == 1 and got["overlap_sample_ids"] == [500]


def test_folder_sources_hash_their_files(tmp_path):
    """A folder source hashes its files' bytes (ImageNet: one pass over 1.33M files)."""
    import shutil

    from conftest import write_tiny_imagefolder
    from lottery_mia.datasets import DATASETS

    src = DATASETS["imagenet"]
    assert "duplicates" in src.data_checks
    root = write_tiny_imagefolder(tmp_path, classes=2, per_class=3)
    samples = src.folder(root, "train").samples
    shutil.copy(samples[0][0], samples[4][0])
    h = src.image_digests(root, "train", [0, 1, 4])
    assert h[0] == h[2] != h[1]
