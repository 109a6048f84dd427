"""The pruning mask: which weights of a network survive.

A :class:`Mask` maps parameter names to 0/1 float tensors of the same shape. Only the weights
of ``Conv2d`` and ``Linear`` layers are prunable; biases and BatchNorm parameters never are.
Whether the final classifier (the layers its architecture declares, ``fc`` for ResNets) is
pruned is a choice recorded in the mask (``prune_fc``; OpenLTH prunes it for ResNets,
ShrinkBench never does).

Mask arithmetic lives here and nowhere else: :func:`prune_by_score` is the one global
ranking every pruning method prunes by (exactly the requested number of weights, ties broken
by position, so the achieved sparsity is exact, not "whatever a threshold happens to
give"); the methods themselves (which scores, which network) are in
:mod:`lottery_mia.pruning`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


def classifier_layers(model: nn.Module) -> set[str]:
    """The module names of ``model``'s final classifier: what its architecture declares
    (:func:`lottery_mia.networks.build_model` records it), else its last ``Linear``."""
    declared = getattr(model, "classifier_layers", None)
    if declared is not None:
        return set(declared)
    linear = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    return set(linear[-1:])


def prunable_names(model: nn.Module, prune_fc: bool = True) -> list[str]:
    """Names of the prunable parameters: Conv2d and Linear weights; those of the final
    classifier (:func:`classifier_layers`) only with ``prune_fc``."""
    skip = set() if prune_fc else classifier_layers(model)
    names = []
    for mod_name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)) and mod_name not in skip:
            names.append(f"{mod_name}.weight" if mod_name else "weight")
    return names


class Mask:
    def __init__(self, tensors: dict[str, torch.Tensor], prune_fc: bool = True):
        self.tensors = {k: v.detach().to(torch.float32).cpu() for k, v in tensors.items()}
        self.prune_fc = prune_fc
        for name, t in self.tensors.items():
            if not torch.all((t == 0) | (t == 1)):
                raise ValueError(f"mask for {name} is not 0/1")

    # ------------------------------------------------------------------ construction
    @classmethod
    def ones_like(cls, model: nn.Module, prune_fc: bool = True) -> "Mask":
        params = dict(model.named_parameters())
        return cls({n: torch.ones_like(params[n]) for n in prunable_names(model, prune_fc)},
                   prune_fc)

    def copy(self) -> "Mask":
        """An independent copy (the constructor does not copy tensors already float32/CPU)."""
        return Mask({n: t.clone() for n, t in self.tensors.items()}, self.prune_fc)

    # ------------------------------------------------------------------ use
    def validate(self, model: nn.Module) -> None:
        params = dict(model.named_parameters())
        for name, t in self.tensors.items():
            if name not in params:
                raise ValueError(f"mask names {name!r}, which the model does not have")
            if params[name].shape != t.shape:
                raise ValueError(f"mask for {name!r} has shape {tuple(t.shape)}, "
                                 f"the model's is {tuple(params[name].shape)}")

    def to(self, device) -> "Mask":
        m = Mask.__new__(Mask)
        m.tensors = {k: v.to(device) for k, v in self.tensors.items()}
        m.prune_fc = self.prune_fc
        return m

    @torch.no_grad()
    def apply_(self, model: nn.Module) -> None:
        """Zero the pruned weights in place (call after every optimizer step)."""
        params = dict(model.named_parameters())
        for name, t in self.tensors.items():
            p = params[name]
            p.mul_(t.to(device=p.device, dtype=p.dtype))

    @torch.no_grad()
    def mask_grads_(self, model: nn.Module) -> None:
        """Zero the gradients of pruned weights (keeps momentum buffers of pruned weights at 0)."""
        params = dict(model.named_parameters())
        for name, t in self.tensors.items():
            g = params[name].grad
            if g is not None:
                g.mul_(t.to(device=g.device, dtype=g.dtype))

    # ------------------------------------------------------------------ reporting
    def n_total(self) -> int:
        return sum(t.numel() for t in self.tensors.values())

    def n_pruned(self) -> int:
        return sum(int((t == 0).sum()) for t in self.tensors.values())

    def sparsity(self) -> float:
        return self.n_pruned() / self.n_total()

    def report(self, model: nn.Module | None = None) -> dict:
        """Sparsity over the prunable set, over all parameters (given a model), per layer."""
        rep = {
            "prune_fc": self.prune_fc,
            "prunable_weights": self.n_total(),
            "pruned_weights": self.n_pruned(),
            "sparsity_prunable": self.sparsity(),
            "per_layer": {
                name: {"weights": t.numel(), "pruned": int((t == 0).sum()),
                       "sparsity": float((t == 0).float().mean())}
                for name, t in self.tensors.items()
            },
        }
        if model is not None:
            total = sum(p.numel() for p in model.parameters())
            rep["all_parameters"] = total
            rep["sparsity_all_parameters"] = self.n_pruned() / total
        return rep

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> None:
        """A safetensors file: one bool tensor per prunable weight, ``prune_fc`` as JSON."""
        from .checkpoints import write_tensors

        write_tensors(path, {k: v.to(torch.bool) for k, v in self.tensors.items()},
                      {"kind": "mask", "prune_fc": self.prune_fc})

    @classmethod
    def load(cls, path: str | Path) -> "Mask":
        """Read a mask; nothing is unpickled (files of the earlier ``torch.save`` format are
        read with ``weights_only=True``: a planted pickle payload is refused, not run)."""
        from .checkpoints import CorruptFileError, read_state, read_tensors

        fix = "delete it and rerun the prune_mask rule"
        got = read_tensors(path, "mask", remedy=fix)
        if got is not None:
            tensors, meta = got
            obj = {"mask": tensors, "prune_fc": meta.get("prune_fc")}
        else:
            obj = read_state(path, "mask", remedy=fix)
        if (not isinstance(obj, dict) or not isinstance(obj.get("mask"), dict)
                or not isinstance(obj.get("prune_fc"), bool) or not obj["mask"]
                or not all(torch.is_tensor(v) for v in obj["mask"].values())):
            raise CorruptFileError(f"mask {path} is not a lottery-mia mask (a 'mask' dict of "
                                   f"tensors and a 'prune_fc' flag); {fix}")
        try:
            return cls({k: v.to(torch.float32) for k, v in obj["mask"].items()}, obj["prune_fc"])
        except ValueError as err:
            raise CorruptFileError(f"mask {path}: {err}; {fix}") from None


def prune_by_score(scores: dict[str, torch.Tensor], mask: Mask, target: int) -> Mask:
    """Among the weights that survive in ``mask``, prune the lowest-scoring ones (one global
    ranking over all layers; ties broken by position, layers in the mask's order) until
    exactly ``target`` weights are pruned in total. Weights ``mask`` prunes stay pruned and
    count towards ``target``."""
    names = list(mask.tensors)
    if set(scores) != set(names):
        raise ValueError(f"scores name {sorted(set(scores) ^ set(names))}, which the mask "
                         f"does (not) have")
    for n in names:
        if tuple(scores[n].shape) != tuple(mask.tensors[n].shape):
            raise ValueError(f"scores for {n!r} have shape {tuple(scores[n].shape)}, the "
                             f"mask's is {tuple(mask.tensors[n].shape)}")
    n_total, already = mask.n_total(), mask.n_pruned()
    if isinstance(target, bool) or not isinstance(target, int):
        raise ValueError(f"target must be an integer number of weights, got {target!r}")
    if target < already:
        raise ValueError(f"target {target} pruned weights is below the {already} the mask "
                         f"already prunes; pruning never brings a weight back")
    if target > n_total:
        raise ValueError(f"target {target} pruned weights exceeds the {n_total} prunable")
    flat_mask = torch.cat([mask.tensors[n].flatten() for n in names])
    flat = torch.cat([scores[n].detach().flatten().to("cpu", torch.float64) for n in names])
    survivors = torch.nonzero(flat_mask == 1, as_tuple=True)[0]
    alive = flat[survivors]
    if torch.isnan(alive).any():
        raise ValueError("pruning scores contain NaN")
    keep = flat_mask.clone()
    n_extra = target - already
    if n_extra > 0:
        order = torch.sort(alive, stable=True).indices
        keep[survivors[order[:n_extra]]] = 0.0
    tensors, offset = {}, 0
    for n in names:
        k = mask.tensors[n].numel()
        tensors[n] = keep[offset:offset + k].view_as(mask.tensors[n]).clone()
        offset += k
    new = Mask(tensors, mask.prune_fc)
    assert new.n_pruned() == target, (new.n_pruned(), target)
    return new


def load_fitting_mask(path, model: nn.Module, what) -> Mask:
    """The mask at ``path``, checked to fit ``model`` (named ``what`` in the error)."""
    from .checkpoints import CorruptFileError

    mask = Mask.load(path)
    try:
        mask.validate(model)
    except ValueError as err:
        raise CorruptFileError(f"mask {path} does not fit {what}: {err}; delete the mask and "
                               "rerun the prune_mask rule") from None
    return mask


def model_sparsity(model: nn.Module, prune_fc: bool = True) -> dict:
    """Measured zeros in the prunable weights of a model (independent of any mask)."""
    params = dict(model.named_parameters())
    names = prunable_names(model, prune_fc)
    zeros = sum(int((params[n] == 0).sum()) for n in names)
    total = sum(params[n].numel() for n in names)
    return {"zeros_prunable": zeros, "prunable_weights": total, "sparsity_prunable": zeros / total}

