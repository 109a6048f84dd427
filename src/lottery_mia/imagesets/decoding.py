"""Decoding image files and their views: JPEG/RGB decoding, the seeded train crop and the
evaluation crop geometry (the same on the CPU and the GPU decode paths)."""

from __future__ import annotations

import numpy as np

from ..datasets.imagenet import load_image


# --------------------------------------------------------------------------- image files
DECODE_CHOICES = ("auto", "cpu", "device")
RESIZE_RATIO = 256 / 224  # eval: resize the short side to 256 for a 224 centre crop
RRC_SCALE, RRC_RATIO = (0.08, 1.0), (3 / 4, 4 / 3)


def read_image_bytes(path) -> "object":
    """The encoded bytes of an image file as a 1-D uint8 tensor; an unreadable file raises
    an error that names it."""
    import torch

    try:
        return torch.from_numpy(np.fromfile(str(path), dtype=np.uint8))
    except Exception as err:  # noqa: BLE001 - every failure names the file
        raise ValueError(f"image {path} cannot be read ({type(err).__name__}: "
                         f"{str(err).splitlines()[0][:200] if str(err) else ''}); replace or "
                         "delete it") from None


def decode_rgb(data, path):
    """A uint8 3 x H x W RGB image from encoded bytes (JPEG, PNG, ... via torchvision's
    libjpeg-turbo/libpng decoders); what they cannot read goes to PIL, whose failure names
    the file."""
    from torchvision.io import ImageReadMode, decode_image

    try:
        return decode_image(data, mode=ImageReadMode.RGB)
    except Exception:  # noqa: BLE001 - a format torchvision lacks, or a broken file
        import torch

        return torch.from_numpy(np.asarray(load_image(str(path)))).permute(2, 0, 1)


def is_jpeg(data) -> bool:
    """JPEG's start-of-image marker (what the GPU decoder reads)."""
    return data.numel() > 3 and bool(data[0] == 0xFF) and bool(data[1] == 0xD8)


def view_params(seed: int, h: int, w: int, hflip: bool) -> tuple[int, int, int, int, bool]:
    """RandomResizedCrop's box (top, left, height, width; torchvision's algorithm: scale
    0.08-1, aspect ratio 3/4-4/3, 10 tries, then a central crop) and the flip, drawn from a
    generator of its own seeded by ``seed``: the view of a sample depends on the epoch's
    seed and its position in the epoch only, never on the loader's worker or the rank."""
    import math
    import random

    rng = random.Random(seed)
    area = h * w
    lo, hi = math.log(RRC_RATIO[0]), math.log(RRC_RATIO[1])
    box = None
    for _ in range(10):
        target = area * rng.uniform(*RRC_SCALE)
        aspect = math.exp(rng.uniform(lo, hi))
        cw = int(round(math.sqrt(target * aspect)))
        ch = int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            box = (rng.randint(0, h - ch), rng.randint(0, w - cw), ch, cw)
            break
    if box is None:  # torchvision's fallback: the central crop of a clamped aspect ratio
        ratio = w / h
        if ratio < RRC_RATIO[0]:
            cw, ch = w, int(round(w / RRC_RATIO[0]))
        elif ratio > RRC_RATIO[1]:
            cw, ch = int(round(h * RRC_RATIO[1])), h
        else:
            cw, ch = w, h
        box = ((h - ch) // 2, (w - cw) // 2, ch, cw)
    flip = hflip and rng.random() < 0.5
    return (*box, flip)


def eval_geometry(h: int, w: int, size: int) -> tuple[int, int, int, int]:
    """Resize(short side to size x 256/224) then CenterCrop(size), as torchvision computes
    them: (resized height, resized width, crop top, crop left)."""
    short = int(size * RESIZE_RATIO)
    if h <= w:
        rh, rw = short, int(short * w / h)
    else:
        rh, rw = int(short * h / w), short
    return rh, rw, int(round((rh - size) / 2.0)), int(round((rw - size) / 2.0))


def _train_view_uint8(img, seed: int, size: int, hflip: bool):
    """The training view of a uint8 CPU image (crop, antialiased bilinear resize in uint8,
    flip): what a loader worker returns."""
    from torchvision.transforms.v2 import functional as TF

    _, h, w = img.shape
    top, left, ch, cw, flip = view_params(seed, h, w, hflip)
    out = TF.resize(img[:, top:top + ch, left:left + cw], [size, size], antialias=True)
    return out.flip(-1) if flip else out


def _eval_view_uint8(img, size: int):
    from torchvision.transforms.v2 import functional as TF

    _, h, w = img.shape
    rh, rw, top, left = eval_geometry(h, w, size)
    out = TF.resize(img, [rh, rw], antialias=True)
    return out[:, top:top + size, left:left + size]


def _resize_float(img, size_hw):
    import torch.nn.functional as F

    return F.interpolate(img[None].float(), size=size_hw, mode="bilinear", antialias=True,
                         align_corners=False)[0]
