"""The pruning job of the DAG (rule ``prune_mask``): one pruning step of a method.

It loads the network the method scores (the dense run's trained weights, the previous IMP
round's ticket, or w0), the mask it starts from (all ones, the previous round's, or the
one-shot mask at the same sparsity), asks the registered method for the new mask, checks it
(the exact count; survivors a subset of the starting mask's, or for a control built on
another mask, the same per-layer counts) and writes it with a JSON report.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..checkpoints import load_checkpoint
from ..io import log, write_json
from ..masks import Mask, load_fitting_mask
from ..pruning import derived_seed, get_method
from ..recipe import with_how

__all__ = ["prune_mask"]


def _balanced_batches(data, rec, n_batches: int, batch_size: int, seed: int) -> list:
    """``n_batches`` seeded minibatches of the members with as many samples of every class
    (batch_size // classes each, drawn without replacement within a batch), as GraSP's
    reference code draws them."""
    import numpy as np
    import pandas as pd

    from ..data import rows_image_set
    from ..membership import read_membership

    table = read_membership(data.membership)
    members = table[table["member"]].reset_index(drop=True)
    classes = sorted(members["label"].unique())
    per = max(batch_size // len(classes), 1)
    rng = np.random.default_rng(seed)
    picks = []
    for _ in range(n_batches):
        for c in classes:
            rows = np.flatnonzero(members["label"].to_numpy() == c)
            picks.append(rng.choice(rows, per, replace=len(rows) < per))
    chosen = members.iloc[np.concatenate(picks)]
    images = rows_image_set(data.source, data.root, pd.DataFrame(chosen), key=data.key,
                            device="cpu", num_workers=rec.num_workers)
    return list(images.eval_batches(per * len(classes)))


def _training_batches(data, recipe: dict, recipe_key: str, n_batches: int, batch_size: int,
                      seed: int, balanced: bool = False) -> list:
    """``n_batches`` seeded minibatches of the members (the training set), no augmentation;
    ``balanced``: class-balanced (:func:`_balanced_batches`)."""
    from ..data import Augment, member_and_test_sets
    from ..recipe import Recipe

    rec = Recipe.from_dict(recipe, recipe_key)
    if balanced:
        return _balanced_batches(data, rec, n_batches, batch_size, seed)
    train_set, _ = member_and_test_sets(data, rec, torch.device("cpu"))
    size = min(batch_size, len(train_set))
    batches = []
    epoch = 0
    while len(batches) < n_batches:
        for xb, yb in train_set.train_batches(size, seed + epoch, Augment()):
            batches.append((xb, yb))
            if len(batches) == n_batches:
                break
        epoch += 1
    return batches


def prune_mask(*, method: str, settings: dict | None, score_model, out_mask, out_report,
               base_mask=None, sparsity: float | None = None, imp_round: int | None = None,
               seed: int = 0, prune_fc: bool = True, data=None, recipe: dict | None = None,
               recipe_key: str = "training", threads: int | None = None,
               num_workers: int | None = None) -> dict:
    """One pruning step of ``method``: the new mask, checked and written with its report."""
    if threads:
        torch.set_num_threads(int(threads))
    m = get_method(method, settings)
    model, _ = load_checkpoint(score_model)
    if base_mask is not None:
        mask = load_fitting_mask(base_mask, model, score_model)
        if mask.prune_fc != prune_fc:
            raise ValueError(f"mask {base_mask} was made with prune_fc={mask.prune_fc}, the "
                             f"config says pruning.prune_fc={prune_fc}; delete it and rerun")
    else:
        mask = Mask.ones_like(model, prune_fc)
    target = m.target_pruned(mask, sparsity)
    batches = None
    if m.needs_data:
        s = m.settings
        batches = _training_batches(data, with_how(recipe, num_workers=num_workers),
                                    recipe_key, int(s.batches), int(s.batch_size),
                                    derived_seed(seed, f"{method}-batches", sparsity),
                                    balanced=getattr(m, "balanced_batches", False))
    new = m.prune(model, mask, target=target, seed=derived_seed(seed, method, sparsity),
                  batches=batches)
    if new.n_pruned() != target:
        raise AssertionError(f"{method} pruned {new.n_pruned()} weights, not {target}")
    for name, t in mask.tensors.items():
        if m.base_mask is not None:  # a control of a mask: its per-layer counts, redrawn or not
            if int((t == 0).sum()) != int((new.tensors[name] == 0).sum()):
                raise AssertionError(f"{method} changed the pruned count of {name}")
        elif torch.any((t == 0) & (new.tensors[name] == 1)):  # nested: IMP rounds
            raise AssertionError(f"{method} brought back pruned weights of {name}")
    Path(out_mask).parent.mkdir(parents=True, exist_ok=True)
    new.save(out_mask)
    report = new.report(model)
    report.update(method=method, requested_sparsity=sparsity, imp_round=imp_round,
                  scored=str(score_model), started_from=str(base_mask) if base_mask else None)
    write_json(report, out_report)
    log(f"{method} mask{f' round {imp_round}' if imp_round else ''}: pruned "
        f"{report['pruned_weights']} of {report['prunable_weights']} prunable weights "
        f"(sparsity {report['sparsity_prunable']:.6f}; "
        f"{report['sparsity_all_parameters']:.4f} of all parameters)")
    return report
