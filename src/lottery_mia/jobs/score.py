"""The scoring job of the DAG (rule ``extract_confidences``): run a trained network over every
scored member and non-member of its membership table and write its confidence table.

Inference runs in float32 without autocast, whatever the device (see
:mod:`lottery_mia.scoring`); the job first checks that the checkpoint is the network it was
asked for (:func:`lottery_mia.checkpoints.check_trained_network`).
"""

from __future__ import annotations

import numpy as np

from ..confidences import ConfidenceTable, scaled_logit_of, write_confidences
from ..io import log
from ..scoring import predict_views

__all__ = ["extract_confidences", "check_sensitivity"]


def check_sensitivity(settings: dict | None) -> dict | None:
    """``confidences.sensitivity`` as the scoring uses it (None: off), or a ValueError
    naming the key."""
    if not settings or not settings.get("draws"):
        return None
    draws, eps = settings.get("draws"), settings.get("epsilon", 1e-3)
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ValueError(f"config key confidences.sensitivity.draws: {draws!r} is not a "
                         "positive integer (0: no sensitivity)")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
        raise ValueError(f"config key confidences.sensitivity.epsilon: {eps!r} is not a "
                         "positive number")
    return {"draws": draws, "epsilon": float(eps), "seed": int(settings.get("seed", 0))}


def extract_confidences(*, data, model_path, dataset: str, arch: str, sparsity: float,
                        device: str, batch_size: int, output, replicate: int | None = None,
                        threads: int | None = None, num_workers: int = 4,
                        augmentations: int = 1, method: str | None = None,
                        metrics_path=None, gpu_slots: int | None = None,
                        expected: dict | None = None, mask_path=None,
                        runtime: dict | None = None,
                        logits_dtype: str = "float32",
                        sensitivity: dict | None = None) -> ConfidenceTable:
    """Score every scored member and non-member of the membership table with one model.

    ``augmentations`` 2 also scores the horizontally flipped images and stores LiRA's
    scaled logit of each view and their average (use it when training flips; the logits column
    stays the original view's); both views come from one pass over the data, each image
    read and decoded once. ``method`` (the pruning method, ``dense`` for the dense
    network) and the achieved sparsity read from the training job's ``metrics_path`` go into
    the table's metadata, so attack results carry them. With ``expected`` (the network's
    identity as the rule sees it) the checkpoint must be that network, trained with the
    mask at ``mask_path`` (a ticket) or with none (dense):
    :func:`lottery_mia.checkpoints.check_trained_network`. ``runtime`` (the config's
    ``runtime`` block) says where ImageNet's JPEGs are decoded (``jpeg_decode``).
    ``logits_dtype`` (config key ``confidences.logits_dtype``) is how the table stores the
    logits: float32, or float16 / bfloat16 at half the size
    (:func:`lottery_mia.confidences.write_confidences`). ``sensitivity`` (config key
    ``confidences.sensitivity``: ``draws``, ``epsilon``, ``seed``; draws 0 or None: off)
    also stores SAMIA's per-class sensitivity of every row (``draws`` more forward passes
    per image: :func:`lottery_mia.scoring.predict_views`).
    """
    if augmentations not in (1, 2):
        raise ValueError(f"config key confidences.augmentations: {augmentations} must be 1 "
                         "(the image) or 2 (the image and its horizontal flip)")
    import torch

    from ..checkpoints import check_trained_network, load_checkpoint
    from ..data import image_set
    from ..devices import claim_device
    from ..masks import Mask
    from ..membership import read_membership
    from ..runtime import jpeg_decode_of

    sensitivity = check_sensitivity(sensitivity)
    if threads:
        torch.set_num_threads(int(threads))
    table = read_membership(data.membership)
    table = table[table["scored"]]
    parts = []
    with claim_device(device, slots=gpu_slots) as claim:
        dev = torch.device(claim.device)
        decode = jpeg_decode_of(dev, runtime)
        model, ckpt = load_checkpoint(model_path, dev)
        if expected is not None:
            mask = Mask.load(mask_path) if mask_path else None
            check_trained_network(model_path, ckpt, model, dict(expected), mask, mask_path)
        # images are read from the pool each row names (a reference model's members can come
        # from either pool of the source)
        for pool, rows in table.groupby("pool", sort=True):
            ds = image_set(data.source, data.root, pool, rows["pool_index"].to_numpy(),
                           key=data.key, device=dev, num_workers=num_workers,
                           channels_last=False, decode=decode)
            # one pass: each image is read and decoded once, its views scored together
            scored = predict_views(model, ds, batch_size, dev, views=augmentations,
                                   sensitivity=sensitivity)
            views, labels = scored[:2]
            sens = scored[2] if sensitivity else None
            logits = views[0]
            # LiRA's statistic of each view (N x views): LiRA fits a Gaussian per view
            phi = np.stack([scaled_logit_of(v, labels) for v in views], axis=1)
            if not np.array_equal(labels, rows["label"].to_numpy()):
                raise ValueError(f"labels read from {pool} disagree with {data.membership}: "
                                 "the dataset files changed since the split was made; "
                                 "rerun the membership_split rule")
            parts.append((rows["sample_id"].to_numpy(), labels, rows["member"].to_numpy(),
                          logits, phi, sens))
            log(f"scored {len(rows)} samples of pool {pool!r} ({int(rows['member'].sum())} "
                f"members) on {dev} (float32)"
                + (f", with the sensitivity of {sensitivity['draws']} noisy passes"
                   if sensitivity else ""))
    sid, lab, mem, lg, phi = (np.concatenate(x) for x in list(zip(*parts))[:5])
    sens = np.concatenate([p[5] for p in parts]) if sensitivity else None
    meta = {"dataset": dataset, "arch": arch, "sparsity": sparsity,
            "num_classes": int(lg.shape[1]), "augmentations": int(augmentations)}
    if replicate is not None:
        meta["replicate"] = int(replicate)
    if sensitivity:
        meta["sensitivity"] = dict(sensitivity)
    if method is not None:
        meta["method"] = method
    if metrics_path is not None:
        from ..io import read_json

        trained = read_json(metrics_path)
        meta["achieved_sparsity"] = float(trained.get("mask", {}).get("sparsity_prunable", 0.0))
        if trained.get("imp_round") is not None:
            meta["imp_round"] = int(trained["imp_round"])
    t = ConfidenceTable.from_logits(sid, lab, mem, lg, meta,
                                    phi_views=phi if augmentations > 1 else None,
                                    sensitivity=sens)
    write_confidences(t, output, logits_dtype=logits_dtype)
    acc_m = float(t.correct[t.member].mean())
    acc_n = float(t.correct[~t.member].mean())
    log(f"wrote {output}: accuracy on members {acc_m:.4f}, on non-members {acc_n:.4f}; "
        f"mean loss members {t.loss[t.member].mean():.4g}, non-members "
        f"{t.loss[~t.member].mean():.4g}; logits stored as {logits_dtype}")
    return t
