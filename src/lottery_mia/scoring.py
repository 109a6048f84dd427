"""Scoring: a trained model's float32 logits of the images of an image set (the scoring job
that writes a model's confidence table is :mod:`lottery_mia.jobs.score`).

Inference runs in float32 without autocast, whatever the device: membership signal lives in
the last digits of the confidences (a bf16 logit moves in steps of about 0.125), and the
table stores the raw logits so every later score is computed from them exactly.
"""

from __future__ import annotations

import numpy as np


def predict_logits(model, dataset, batch_size: int, device,
                   flip: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Float32 logits (N x classes) and labels of ``dataset``, in its order (of the
    horizontally flipped images with ``flip``)."""
    import torch

    from .data import as_model_input

    model.eval().to(device)
    logits, labels = [], []
    with torch.no_grad():
        for xb, yb in dataset.eval_batches(batch_size):
            xb = xb.float()
            if flip:
                xb = xb.flip(-1)
            logits.append(model(as_model_input(xb)).float().cpu())
            labels.append(yb.cpu())
    return torch.cat(logits).numpy().astype(np.float32), torch.cat(labels).numpy()
