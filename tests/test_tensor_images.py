"""lottery_mia.imagesets.tensor_images: images held in memory, an epoch drawn up front."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lottery_mia.imagesets.tensor_images import TensorImageSet
from lottery_mia.recipe import Augment


def _set(n=10, c=1, side=4):
    x = torch.arange(n * c * side * side, dtype=torch.int64).remainder(251).to(torch.uint8)
    return TensorImageSet(x.view(n, c, side, side), list(range(n)), (0.5,) * c, (0.5,) * c)


def test_augmentation_is_seeded_and_keeps_shapes():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.uint8).view(2, 1, 4, 4)
    ds = TensorImageSet(x, [0, 1], (0.5,), (0.5,))
    aug = Augment(crop_padding=1, hflip=True)
    a = [b[0] for b in ds.train_batches(2, order_seed=5, augment=aug)]
    b = [b[0] for b in ds.train_batches(2, order_seed=5, augment=aug)]
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert a[0].shape == (2, 1, 4, 4)
    plain = [b[0] for b in ds.train_batches(2, order_seed=5, augment=Augment())]
    assert sorted(plain[0].flatten().tolist()) == sorted(ds._prep(x).flatten().tolist())


def test_every_crop_is_a_window_of_the_zero_padded_image_and_flips_mirror_it():
    ds = _set(n=8, side=5)
    pad = 2
    plan = ds.epoch_plan(4, order_seed=3, augment=Augment(crop_padding=pad, hflip=True))
    for step in range(plan.steps):
        xb, yb = ds.plan_batch(plan, step)
        for i, label in enumerate(yb.tolist()):
            pos = step * 4 + i
            padded = F.pad(ds.x[label:label + 1].float(), (pad,) * 4)[0]
            oy, ox = int(plan.oy[pos]), int(plan.ox[pos])
            want = padded[:, oy:oy + 5, ox:ox + 5]
            if bool(plan.flip[pos]):
                want = want.flip(-1)
            assert torch.equal(xb[i], (want / 255 - 0.5) / 0.5)
    assert plan.flip.any() and (~plan.flip).any()  # both branches were drawn


def test_an_epoch_visits_each_sample_once_and_drops_only_the_short_last_batch():
    ds = _set(n=10)
    seen = [y for _, yb in ds.train_batches(4, order_seed=1, augment=Augment()) for y in yb.tolist()]
    assert len(seen) == 8 and len(set(seen)) == 8
    other = [y for _, yb in ds.train_batches(4, order_seed=2, augment=Augment())
             for y in yb.tolist()]
    assert other != seen  # the order seed changes the order


def test_a_mid_epoch_start_continues_the_same_epoch():
    ds = _set(n=12)
    aug = Augment(crop_padding=1, hflip=True)
    full = list(ds.train_batches(4, order_seed=7, augment=aug))
    rest = list(ds.train_batches(4, order_seed=7, augment=aug, skip=1))
    assert len(rest) == 2
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
               for a, b in zip(full[1:], rest))


def test_ranks_together_see_the_single_process_batches():
    ds = _set(n=16)
    aug = Augment(crop_padding=1, hflip=True)
    whole = list(ds.train_batches(8, order_seed=4, augment=aug))
    parts = [list(ds.train_batches(8, order_seed=4, augment=aug, shard=(r, 2))) for r in (0, 1)]
    for step, (xb, yb) in enumerate(whole):
        assert torch.equal(torch.cat([parts[0][step][0], parts[1][step][0]]), xb)
        assert torch.equal(torch.cat([parts[0][step][1], parts[1][step][1]]), yb)


def test_evaluation_keeps_the_sets_order_and_every_row():
    ds = _set(n=10)
    ys = torch.cat([yb for _, yb in ds.eval_batches(3)])
    assert ys.tolist() == list(range(10))
    halves = [torch.cat([yb for _, yb in ds.eval_batches(3, shard=(r, 2))]) for r in (0, 1)]
    assert torch.cat(halves).tolist() == list(range(10))


def test_channels_last_batches_are_channels_last_and_equal():
    x = torch.randint(0, 256, (4, 3, 6, 6), dtype=torch.uint8)
    plain = TensorImageSet(x, [0, 1, 2, 3], (0.5,) * 3, (0.25,) * 3)
    cl = TensorImageSet(x, [0, 1, 2, 3], (0.5,) * 3, (0.25,) * 3, channels_last=True)
    a, _ = next(plain.eval_batches(4))
    b, _ = next(cl.eval_batches(4))
    assert a.is_contiguous() and b.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(a, b)
