"""lottery_mia.imagesets.decoding: image files, their seeded training view, the eval crop."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from lottery_mia.imagesets.decoding import (decode_rgb, eval_geometry, is_jpeg,
                                            read_image_bytes, view_params, _eval_view_uint8,
                                            _train_view_uint8)


def _write(path, fmt, size=(37, 23)):
    from PIL import Image

    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, format=fmt)
    return arr


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_files_decode_to_rgb_uint8_as_pil_reads_them(tmp_path, fmt):
    from PIL import Image

    path = tmp_path / f"img.{fmt.lower()}"
    arr = _write(path, fmt)
    data = read_image_bytes(path)
    assert is_jpeg(data) == (fmt == "JPEG")
    img = decode_rgb(data, path)
    assert img.dtype == torch.uint8 and tuple(img.shape) == (3, 23, 37)
    pil = np.asarray(Image.open(path).convert("RGB"))
    if fmt == "PNG":
        assert np.array_equal(img.permute(1, 2, 0).numpy(), arr)
    else:  # two JPEG decoders may differ by rounding
        assert np.abs(img.permute(1, 2, 0).numpy().astype(int) - pil.astype(int)).max() <= 8


def test_an_unreadable_image_names_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"missing\.jpg cannot be read"):
        read_image_bytes(tmp_path / "missing.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8not a jpeg at all")
    with pytest.raises(Exception, match="bad.jpg"):
        decode_rgb(read_image_bytes(bad), bad)


def test_a_view_depends_on_its_seed_only_and_stays_inside_the_image():
    for seed in range(200):
        top, left, ch, cw, flip = view_params(seed, 50, 80, hflip=True)
        assert view_params(seed, 50, 80, hflip=True) == (top, left, ch, cw, flip)
        assert 0 <= top and top + ch <= 50 and 0 <= left and left + cw <= 80 and ch > 0 < cw
        assert 0.08 * 4000 * 0.5 <= ch * cw <= 4000
    flips = [view_params(s, 50, 80, hflip=True)[4] for s in range(200)]
    assert 40 < sum(flips) < 160
    assert not any(view_params(s, 50, 80, hflip=False)[4] for s in range(50))


def test_an_extreme_aspect_falls_back_to_a_central_crop():
    top, left, ch, cw, _ = view_params(0, 4, 400, hflip=False)
    assert (ch, cw) == (4, int(round(4 * 4 / 3))) and left == (400 - cw) // 2 and top == 0


def test_the_eval_crop_is_torchvisions_resize_and_center_crop():
    from torchvision.transforms import v2

    img = torch.randint(0, 256, (3, 300, 451), dtype=torch.uint8)
    want = v2.Compose([v2.Resize(256, antialias=True), v2.CenterCrop(224)])(img)
    got = _eval_view_uint8(img, 224)
    assert got.shape == (3, 224, 224) and torch.equal(got, want)
    assert eval_geometry(300, 451, 224)[:2] == (256, 384)


def test_the_train_view_is_the_seeded_box_resized_and_flipped():
    from torchvision.transforms.v2 import functional as TF

    img = torch.randint(0, 256, (3, 60, 90), dtype=torch.uint8)
    for seed in range(5):
        top, left, ch, cw, flip = view_params(seed, 60, 90, hflip=True)
        want = TF.resize(img[:, top:top + ch, left:left + cw], [32, 32], antialias=True)
        want = want.flip(-1) if flip else want
        assert torch.equal(_train_view_uint8(img, seed, 32, True), want)
