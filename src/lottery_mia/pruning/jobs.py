"""The pruning jobs of the DAG: a method's mask (``prune_mask``) and the state a pruned
network retrains from (``ticket_start``).

A mask job loads the network the method scores (the dense run's trained weights, the previous
IMP round's ticket, or w0), the mask it starts from (all ones, the previous round's, or the
one-shot mask at the same sparsity), asks the registered method for the new mask, checks it
(exact count; survivors a subset of the starting mask's, or for a control built on another
mask, the same per-layer counts) and writes it with a JSON report.
Unlike the registry modules, this module imports torch: only jobs import it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..checkpoints import CorruptFileError, load_checkpoint
from ..io import log, write_json
from ..masks import Mask
from .registry import derived_seed, get_method


def _training_batches(data, recipe: dict, recipe_key: str, n_batches: int, batch_size: int,
                      seed: int) -> list:
    """``n_batches`` seeded minibatches of the members (the training set), no augmentation."""
    from ..data import Augment
    from ..training import Recipe, member_and_test_sets

    rec = Recipe.from_dict(recipe, recipe_key)
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


def fitting_mask(path, model, what) -> Mask:
    """The mask at ``path``, checked to fit ``model`` (named ``what`` in the error)."""
    mask = Mask.load(path)
    try:
        mask.validate(model)
    except ValueError as err:
        raise CorruptFileError(f"mask {path} does not fit {what}: {err}; delete the mask and "
                               "rerun the prune_mask rule") from None
    return mask


def prune_mask(*, method: str, settings: dict | None, score_model, out_mask, out_report,
               base_mask=None, sparsity: float | None = None, imp_round: int | None = None,
               seed: int = 0, prune_fc: bool = True, data=None, recipe: dict | None = None,
               recipe_key: str = "training", threads: int | None = None) -> dict:
    """One pruning step of ``method``: the new mask, checked and written with its report."""
    if threads:
        torch.set_num_threads(int(threads))
    m = get_method(method, settings)
    model, _ = load_checkpoint(score_model)
    if base_mask is not None:
        mask = fitting_mask(base_mask, model, score_model)
        if mask.prune_fc != prune_fc:
            raise ValueError(f"mask {base_mask} was made with prune_fc={mask.prune_fc}, the "
                             f"config says pruning.prune_fc={prune_fc}; delete it and rerun")
    else:
        mask = Mask.ones_like(model, prune_fc)
    target = m.target_pruned(mask, sparsity)
    batches = None
    if m.needs_data:
        s = m.settings
        batches = _training_batches(data, recipe, recipe_key, int(s.batches), int(s.batch_size),
                                    derived_seed(seed, f"{method}-batches", sparsity))
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


def ticket_start(start: str, start_path, mask_path, *, rewind_step: int, seed: int):
    """The pruned network a method retrains, and the step it starts at.

    ``start``: ``rewind`` (the whole rewind state of the dense run, weights, biases and
    BatchNorm statistics, checked to be the configured rewind step), ``init`` (w0, step 0) or
    ``reinit`` (fresh random weights drawn with a seed derived from the run's, the
    architecture read from ``start_path``; it retrains from the rewind step like the ticket
    it controls). The mask is applied, so survivors equal the start state exactly.
    Returns (model, architecture spec, mask, start step).
    """
    from ..models import build_model

    model, ckpt = load_checkpoint(start_path)
    spec = ckpt["model"]
    if start == "rewind":
        step = ckpt.get("step")
        if step is None:  # a checkpoint of an earlier version: epochs only
            raise CorruptFileError(f"{start_path} does not record its step (written by an "
                                   "earlier version); delete it and rerun train_dense")
        if int(step) != rewind_step:
            raise ValueError(f"{start_path} holds the state after step {step}, the config asks "
                             f"to rewind to step {rewind_step} (pruning.rewind_epoch / "
                             "pruning.rewind_step); delete it and rerun train_dense")
        start_step = rewind_step
    elif start == "init":
        start_step = 0
    elif start == "reinit":
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(derived_seed(seed, "reinit"))
        model = build_model(**spec)
        torch.random.set_rng_state(generator_state)
        start_step = rewind_step
    else:
        raise ValueError(f"unknown start state {start!r}; expected rewind, init or reinit")
    mask = fitting_mask(mask_path, model, f"the start state {start_path}")
    mask.apply_(model)
    return model, spec, mask, start_step


def rewound_ticket(rewind_path, mask_path, rewind_step: int):
    """Step 4 of Algorithm 1: the whole rewind state with the mask applied."""
    model, spec, mask, _ = ticket_start("rewind", rewind_path, mask_path,
                                        rewind_step=rewind_step, seed=0)
    return model, spec, mask
