"""The pruning mask: which weights of a network survive.

A :class:`Mask` maps parameter names to 0/1 float tensors of the same shape. Only the weights
of ``Conv2d`` and ``Linear`` layers are prunable; biases and BatchNorm parameters never are.
Whether the final classifier (``fc``) is pruned is a choice recorded in the mask
(``prune_fc``; OpenLTH prunes it for ResNets, ShrinkBench never does).

Pruning is *global* one-shot magnitude pruning: one ranking of |w| over every prunable weight,
removing exactly ``round(sparsity * n_prunable)`` of the smallest (ties broken by position),
so the achieved sparsity is exact, not "whatever a threshold happens to give".
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


def prunable_names(model: nn.Module, prune_fc: bool = True) -> list[str]:
    """Names of the prunable parameters: Conv2d and Linear weights (``fc`` optional)."""
    names = []
    for mod_name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            if isinstance(module, nn.Linear) and not prune_fc:
                continue
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

    @classmethod
    def global_magnitude(cls, model: nn.Module, sparsity: float, prune_fc: bool = True) -> "Mask":
        """Remove exactly round(sparsity * n) of the smallest-magnitude prunable weights."""
        if not 0.0 <= sparsity < 1.0:
            raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
        from .pruning import prune_by_score  # the one global ranking of every method

        ones = cls.ones_like(model, prune_fc)
        params = dict(model.named_parameters())
        n_prune = int(round(sparsity * ones.n_total()))
        scores = {n: params[n].detach().abs().cpu() for n in ones.tensors}
        mask = cls(prune_by_score(scores, ones, n_prune).tensors, prune_fc)
        achieved = mask.sparsity()
        expected = n_prune / ones.n_total()
        assert abs(achieved - expected) < 1e-12, (achieved, expected)
        return mask

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


def model_sparsity(model: nn.Module, prune_fc: bool = True) -> dict:
    """Measured zeros in the prunable weights of a model (independent of any mask)."""
    params = dict(model.named_parameters())
    names = prunable_names(model, prune_fc)
    zeros = sum(int((params[n] == 0).sum()) for n in names)
    total = sum(params[n].numel() for n in names)
    return {"zeros_prunable": zeros, "prunable_weights": total, "sparsity_prunable": zeros / total}

