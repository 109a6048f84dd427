"""Scoring: a trained model's float32 logits of the images of an image set (the scoring job
that writes a model's confidence table is :mod:`lottery_mia.jobs.score`).

Inference runs in float32 without autocast, whatever the device: membership signal lives in
the last digits of the confidences (a bf16 logit moves in steps of about 0.125), and the
table stores the raw logits so every later score is computed from them exactly. On CUDA,
TensorFloat-32 is off while scoring (:func:`float32_math`): a TF32 matmul or convolution
keeps 10 bits of mantissa, which would give float32 logits the precision of bf16-ish ones.

Each image is read and decoded once per pass: with two views (the image and its horizontal
flip, ``confidences.augmentations: 2``) both are scored from the same decoded batch.
"""

from __future__ import annotations

import contextlib

import numpy as np


@contextlib.contextmanager
def float32_math():
    """TF32 off for CUDA matmuls and cuDNN convolutions inside the block, the previous
    settings restored after it. Uses the ``fp32_precision`` settings where PyTorch has them
    and the legacy ``allow_tf32`` flags are refused (PyTorch raises if both styles were
    used to set them), else the legacy flags."""
    import torch

    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    try:
        saved = (matmul.allow_tf32, cudnn.allow_tf32)
        legacy = True
    except RuntimeError:  # the new fp32_precision API was used in this process
        saved = (matmul.fp32_precision, cudnn.conv.fp32_precision)
        legacy = False
    try:
        if legacy:
            matmul.allow_tf32 = cudnn.allow_tf32 = False
        else:
            matmul.fp32_precision = cudnn.conv.fp32_precision = "ieee"
        yield
    finally:
        if legacy:
            matmul.allow_tf32, cudnn.allow_tf32 = saved
        else:
            matmul.fp32_precision, cudnn.conv.fp32_precision = saved


def tf32_enabled() -> bool:
    """Whether CUDA matmuls or cuDNN convolutions may use TF32 now."""
    import torch

    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    try:
        return bool(matmul.allow_tf32 or cudnn.allow_tf32)
    except RuntimeError:
        return matmul.fp32_precision == "tf32" or cudnn.conv.fp32_precision == "tf32"


def predict_views(model, dataset, batch_size: int, device, views: int = 1,
                  sensitivity: dict | None = None):
    """Float32 logits (one N x classes array per view: the image, then with ``views`` 2 its
    horizontal flip) and labels of ``dataset``, in its order, in one pass over the data.

    With ``sensitivity`` (``{"draws": m, "epsilon": e, "seed": s}``, config key
    ``confidences.sensitivity``) also SAMIA's sensitivity of the image (Yuan & Zhang,
    USENIX Security 2022): for each class c, the mean over m draws u ~ N(0, I) (the model's
    input space) of |softmax(f(x + e u))_c - softmax(f(x))_c| / e, as N x classes float32,
    returned third. The draws come from one generator seeded with s, drawn batch by batch
    in the dataset's order (one draw of a batch's noise at a time: no m x batch copy of the
    images), so the same seed gives every model the same noise."""
    import torch

    from .data import as_model_input

    if views not in (1, 2):
        raise ValueError(f"views must be 1 (the image) or 2 (and its flip), got {views}")
    model.eval().to(device)
    logits: list[list] = [[] for _ in range(views)]
    labels, sens = [], []
    gen = None
    if sensitivity:
        draws, eps = int(sensitivity["draws"]), float(sensitivity["epsilon"])
        gen = torch.Generator(device=torch.device(device))
        gen.manual_seed(int(sensitivity.get("seed", 0)))
    with torch.no_grad(), float32_math():
        for xb, yb in dataset.eval_batches(batch_size):
            xb = as_model_input(xb.float())
            out = model(xb).float()
            logits[0].append(out.cpu())
            if views == 2:
                logits[1].append(model(as_model_input(xb.flip(-1))).float().cpu())
            labels.append(yb.cpu())
            if gen is not None:
                p = torch.softmax(out, dim=1)
                total = torch.zeros_like(p)
                for _ in range(draws):
                    u = torch.randn(xb.shape, generator=gen, device=xb.device,
                                    dtype=xb.dtype)
                    total += (torch.softmax(model(as_model_input(xb + eps * u)).float(), 1)
                              - p).abs()
                sens.append((total / (draws * eps)).cpu())
    out_views = [torch.cat(v).numpy().astype(np.float32) for v in logits]
    out_labels = torch.cat(labels).numpy()
    if gen is None:
        return out_views, out_labels
    return out_views, out_labels, np.ascontiguousarray(torch.cat(sens).numpy(),
                                                       dtype=np.float32)


def predict_logits(model, dataset, batch_size: int, device,
                   flip: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Float32 logits (N x classes) and labels of ``dataset``, in its order (of the
    horizontally flipped images with ``flip``)."""
    import torch

    from .data import as_model_input

    model.eval().to(device)
    logits, labels = [], []
    with torch.no_grad(), float32_math():
        for xb, yb in dataset.eval_batches(batch_size):
            xb = xb.float()
            if flip:
                xb = xb.flip(-1)
            logits.append(model(as_model_input(xb)).float().cpu())
            labels.append(yb.cpu())
    return torch.cat(logits).numpy().astype(np.float32), torch.cat(labels).numpy()
