"""The ImageNet data path (FolderImageSet): uint8 across the process boundary, persistent
workers, seeded views independent of workers, the on-device decode path (run here on the
CPU) equal to the worker path, each image decoded once per evaluation pass (also when
scoring two views), training sets spanning the train and val folders, and the throughput
benchmark's output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import ROOT, write_tiny_imagefolder
from lottery_mia.imagesets import folder_images as data_mod
from lottery_mia.imagesets import prefetch as prefetch_mod
from lottery_mia.data import Augment, FolderImageSet, rows_image_set, view_params

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torchvision.io 0.29
MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def write_jpeg_folder(root: Path, classes: int = 2, per_class: int = 5) -> Path:
    """Small JPEGs (the GPU decoder's format) of different shapes, in train/ and val/."""
    from PIL import Image

    rng = np.random.default_rng(1)
    for split in ("train", "val"):
        for c in range(classes):
            d = root / split / f"n{c:08d}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                h, w = int(rng.integers(30, 60)), int(rng.integers(30, 60))
                low = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
                img = Image.fromarray(low).resize((w, h), Image.BILINEAR)
                img.save(d / f"img{i}.JPEG", quality=92)
    return root


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory):
    return write_jpeg_folder(tmp_path_factory.mktemp("jpegs"))


def _set(root, pool="train", n=10, **kw):
    kw.setdefault("num_workers", 0)
    kw.setdefault("image_size", 24)
    return FolderImageSet(root, pool, np.arange(n), MEAN, STD, **kw)


def test_workers_hand_over_uint8_only(jpegs):
    """What a loader worker returns is uint8: decoded views, or the encoded file when the
    device decodes."""
    cpu = _set(jpegs, decode="cpu")
    view, label = cpu._files[("train", 3, 123, True)]
    assert view.dtype == torch.uint8 and tuple(view.shape) == (3, 24, 24)
    ev, _ = cpu._files[("eval", 3, 0, False)]
    assert ev.dtype == torch.uint8 and tuple(ev.shape) == (3, 24, 24)
    enc = _set(jpegs, decode="device")
    raw, label2 = enc._files[("train", 3, 123, True)]
    assert raw.dtype == torch.uint8 and raw.dim() == 1 and label2 == label
    assert bytes(raw[:2].tolist()) == b"\xff\xd8"
    xs, yb = data_mod._collate([cpu._files[("eval", i, 0, False)] for i in range(4)])
    assert xs.dtype == torch.uint8 and xs.shape == (4, 3, 24, 24) and yb.dtype == torch.long


def test_views_are_seeded_by_epoch_and_position_not_by_workers(jpegs):
    """The same epoch seed gives the same batches with 0 or 2 workers; another seed gives
    other crops; the workers persist across passes (same processes every epoch)."""
    aug = Augment(hflip=True)
    solo = [x for x, _ in _set(jpegs, decode="cpu").train_batches(4, 7, aug)]
    pooled = _set(jpegs, decode="cpu", num_workers=2)
    first = [x for x, _ in pooled.train_batches(4, 7, aug)]
    pids = sorted(w.pid for w in pooled._loader._iterator._workers)
    again = [x for x, _ in pooled.train_batches(4, 7, aug)]
    other = [x for x, _ in pooled.train_batches(4, 8, aug)]
    list(pooled.eval_batches(3))
    assert sorted(w.pid for w in pooled._loader._iterator._workers) == pids
    assert len(solo) == 2 and all(torch.equal(a, b) for a, b in zip(solo, first))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))


def test_view_params_follow_random_resized_crop():
    boxes = [view_params(s, 375, 500, True) for s in range(400)]
    for top, left, h, w, _ in boxes:
        assert 0 <= top and top + h <= 375 and 0 <= left and left + w <= 500
        assert 0.08 * 375 * 500 * 0.95 <= h * w <= 375 * 500
        assert 3 / 4 * 0.95 <= w / h <= 4 / 3 * 1.05
    assert 150 < sum(b[4] for b in boxes) < 250  # about half flipped
    assert view_params(5, 375, 500, False)[4] is False
    assert view_params(5, 375, 500, True)[:4] == view_params(5, 375, 500, False)[:4]
    assert view_params(1, 10, 1000, True)[:4] == (0, 493, 10, 13)  # the fallback: centre crop


def test_decoding_on_the_device_gives_the_views_of_the_worker_path(jpegs):
    """The device path (on CUDA: nvJPEG; here the same code on the CPU) and the worker path
    produce the same crops and flips; they differ only by the worker path's uint8 rounding
    of the resized image (at most one grey level)."""
    aug = Augment(hflip=True)
    one_level = 1.0 / 255 / STD[0] + 1e-6
    cpu, dev = _set(jpegs, decode="cpu"), _set(jpegs, decode="device")
    for (a, ya), (b, yb) in zip(cpu.train_batches(5, 3, aug), dev.train_batches(5, 3, aug)):
        assert torch.equal(ya, yb) and a.shape == b.shape == (5, 3, 24, 24)
        assert (a - b).abs().max() <= one_level
    for (a, _), (b, _) in zip(cpu.eval_batches(4), dev.eval_batches(4)):
        assert (a - b).abs().max() <= one_level
    flipped = [x for x, _ in dev.train_batches(5, 3, Augment(hflip=False))]
    plain = [x for x, _ in dev.train_batches(5, 3, aug)]
    assert not all(torch.equal(a, b) for a, b in zip(flipped, plain))


def test_a_broken_jpeg_is_named_on_the_device_path_too(tmp_path):
    root = write_jpeg_folder(tmp_path / "imagenet", per_class=2)
    broken = root / "val" / "n00000001" / "broken.JPEG"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    ds = _set(root, "val", 5, decode="device")
    with pytest.raises(ValueError) as err:
        list(ds.eval_batches(8))
    assert str(broken) in str(err.value) and "replace or delete it" in str(err.value)


def test_each_image_is_decoded_once_per_evaluation_pass_also_with_two_views(jpegs,
                                                                            monkeypatch):
    from lottery_mia.scoring import predict_views

    reads = []
    original = data_mod.read_image_bytes
    monkeypatch.setattr(data_mod, "read_image_bytes", lambda p: reads.append(p) or original(p))
    ds = _set(jpegs, decode="cpu")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(4, 2))
    (plain, flipped), labels = predict_views(model, ds, 4, "cpu", views=2)
    assert len(reads) == len(ds) and len(set(reads)) == len(ds)
    assert plain.shape == flipped.shape == (len(ds), 2) and plain.dtype == np.float32
    with torch.no_grad():
        xs = torch.cat([x for x, _ in ds.eval_batches(4)])
        torch.testing.assert_close(torch.from_numpy(flipped), model(xs.flip(-1)))
        torch.testing.assert_close(torch.from_numpy(plain), model(xs))
    assert list(labels) == ds.y.tolist()


def test_the_scoring_job_makes_one_pass_with_two_views(trained_digits, tmp_path, monkeypatch):
    from lottery_mia.jobs import score

    calls = []
    original = score.predict_views
    monkeypatch.setattr(score, "predict_views",
                        lambda *a, **kw: calls.append(kw.get("views")) or original(*a, **kw))
    score.extract_confidences(data=trained_digits["data"],
                              model_path=trained_digits["dir"] / "model.pt", dataset="digits",
                              arch="resnet18", sparsity=0.0, device="cpu", batch_size=256,
                              output=tmp_path / "c.parquet", threads=1, num_workers=0,
                              augmentations=2)
    assert calls == [2]  # digits: one pool, one pass, both views
    # LiRA fits a Gaussian per view: the table keeps each view's scaled logit, and their mean
    from lottery_mia.confidences import read_confidences

    t = read_confidences(tmp_path / "c.parquet")
    views = t.scaled_logit_views()
    assert views.shape == (len(t), 2) and not np.allclose(views[:, 0], views[:, 1])
    np.testing.assert_allclose(t.scaled_logit(), views.mean(axis=1), rtol=1e-12)


def test_a_training_set_spanning_train_and_val_folders(tmp_path):
    """A reference model's training half of ImageNet's population pool spans both folders:
    one set over both, each row read from its own folder, in the rows' order."""
    root = write_tiny_imagefolder(tmp_path / "imagenet", classes=3, per_class=4, size=20)
    rows = pd.DataFrame({"pool": ["val", "train", "val", "train", "train", "val"],
                         "pool_index": [5, 0, 11, 7, 3, 2]})
    ds = rows_image_set("imagenet", root, rows, key="datasets.imagenet.root", num_workers=0)
    assert len(ds) == 6
    train = FolderImageSet(root, "train", np.arange(12), ds.mean.flatten().tolist(),
                           ds.std.flatten().tolist(), num_workers=0)
    val = FolderImageSet(root, "val", np.arange(12), ds.mean.flatten().tolist(),
                         ds.std.flatten().tolist(), num_workers=0)
    xs, ys = zip(*ds.eval_batches(4))
    xs, ys = torch.cat(xs), torch.cat(ys)
    tx, ty = (torch.cat(t) for t in zip(*train.eval_batches(12)))
    vx, vy = (torch.cat(t) for t in zip(*val.eval_batches(12)))
    for k, (pool, i) in enumerate(zip(rows["pool"], rows["pool_index"])):
        x, y = (vx, vy) if pool == "val" else (tx, ty)
        assert torch.equal(xs[k], x[i]) and int(ys[k]) == int(y[i]), (pool, i)
    steps = list(ds.train_batches(3, 0, Augment(hflip=True)))
    assert len(steps) == 2 and steps[0][0].shape == (3, 3, 224, 224)
    (root / "val" / "n00000002").rename(root / "val" / "n00000009")
    with pytest.raises(ValueError, match="class folders"):
        rows_image_set("imagenet", root, rows, key="k", num_workers=0)


def test_a_training_job_trains_on_both_imagenet_folders(tmp_path):
    """The member rows of a reference's membership table span train and val: the dense job
    trains on them (it refused before)."""
    from lottery_mia.data import DataSpec
    from lottery_mia.jobs.train import train_dense
    from lottery_mia.membership import read_membership

    root = write_tiny_imagefolder(tmp_path / "imagenet", classes=2, per_class=3, size=16)
    pools = ["train"] * 6 + ["val"] * 6
    table = pd.DataFrame({"sample_id": np.arange(12), "pool": pools,
                          "pool_index": list(range(6)) * 2,
                          "label": [0, 0, 0, 1, 1, 1] * 2,
                          "member": [True, False] * 6, "scored": True})
    table.to_parquet(tmp_path / "membership.parquet")
    read_membership(tmp_path / "membership.parquet")  # a valid table
    data = DataSpec("imagenet", "imagenet", str(root), str(tmp_path / "membership.parquet"))
    out = tmp_path / "dense"
    metrics = train_dense(data=data, arch="resnet18", recipe=dict(
        width=2, epochs=1, batch_size=3, lr=0.01, eval_every=0, num_workers=0,
        augment={"hflip": True}), seed=0, device="cpu", out_model=out / "model.pt",
        out_init=out / "init.pt", out_rewind=out / "rewind.pt",
        out_metrics=out / "metrics.json", threads=1)
    assert (out / "model.pt").exists() and metrics["steps_per_epoch"] == 2


def test_the_throughput_benchmark_prints_its_json_last(tmp_path):
    proc = subprocess.run([sys.executable, "-W", "ignore",
                           str(ROOT / "benchmarks" / "data_throughput.py"), "--images", "8",
                           "--batch", "4", "--rounds", "1", "--workers", "0",
                           "--width", "100", "--height", "75"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last["ratio_new_vs_pil"] > 0 and last["images"] == 8
    assert last["new_cpu_train_per_core"]["cpu_images_per_s"] > 0


def test_the_prefetching_thread_hands_over_every_batch_its_errors_and_stops(jpegs):
    """The background producer (on CUDA: on a side stream) gives the batches in order,
    raises what the producer raised, and stops when the consumer stops early."""
    import threading

    ds = _set(jpegs, decode="device")
    keys = [[("eval", i, 0, False) for i in range(s, min(s + 3, 10))] for s in range(0, 10, 3)]
    want = list(ds._batches_of(keys))
    got = list(prefetch_mod._prefetched(lambda: ds._batches_of(keys), "cpu", depth=1))
    assert len(got) == len(want) == 4
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(got, want))

    def failing():
        yield from ds._batches_of(keys[:1])
        raise ValueError("image x cannot be read")

    it = prefetch_mod._prefetched(failing, "cpu")
    assert next(it)[0].shape == (3, 3, 24, 24)
    with pytest.raises(ValueError, match="cannot be read"):
        next(it)
    before = threading.active_count()
    early = prefetch_mod._prefetched(lambda: ds._batches_of(keys), "cpu", depth=1)
    next(early)
    early.close()  # the thread ends, nothing hangs
    assert threading.active_count() <= before
    assert not [t for t in threading.enumerate() if t.name == "lottery-mia-batches"]


def test_encoded_files_cross_from_a_worker_as_one_packed_tensor(jpegs):
    """The device-decode path packs a batch's files into one tensor (one shared-memory
    transfer per batch, not one per file) and unpacks the same bytes."""
    enc = _set(jpegs, decode="device")
    items = [enc._files[("train", i, 5, False)] for i in range(4)]
    (packed, sizes), yb = data_mod._collate(items)
    assert packed.dim() == 1 and sizes.tolist() == [x.numel() for x, _ in items]
    back = data_mod._unpack((packed, sizes))
    assert all(torch.equal(a, b) for a, (b, _) in zip(back, items))
    assert yb.tolist() == [label for _, label in items]
