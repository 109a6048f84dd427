"""``grasp``: GraSP, gradient signal preservation at initialisation (Wang et al. 2020).

With g the gradient of the cross-entropy at the initial weights w0 (the mean over the given
minibatches) and H the Hessian of the loss with respect to the prunable weights, GraSP
scores ``S(-w) = -w * (H g)`` and removes the weights with the *highest* S. Since
:func:`~lottery_mia.masks.prune_by_score` removes the *lowest* scores, the
scores handed to it are ``-S = w * (H g)``.

Hg is a Hessian-gradient product by double backpropagation, as in the reference code: g is
first computed without a graph (``g_const``), then for every batch the gradient ``g_graph``
is taken with ``create_graph=True`` and ``Hg = d(sum(g_const * g_graph)) / dw``, averaged
over the batches. As in the reference code the logits are divided by a temperature
(setting ``temperature``, default 200) and the scoring batches are class-balanced (the
pruning job draws each with as many members of every class: ``balanced_batches``). Forward
passes run in training mode on a deep copy of the network, as for
:mod:`~lottery_mia.pruning.snip`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dataclasses import dataclass, field

from .registry import register_method, setting, weights
from .snip import SaliencyAtInit, _loss, mean_gradient, scoring_copy

if TYPE_CHECKING:
    from torch import Tensor, nn

    from ..masks import Mask


def gradient_and_hg(model: nn.Module, batches: list, names: list[str],
                    mask: Mask | None = None, temperature: float = 1.0) -> tuple[dict, dict]:
    """(g, Hg) for the named weights, as CPU tensors: the mean gradient over the batches,
    and the mean over the batches of the per-batch Hessian applied to g."""
    import torch

    if not batches:
        raise ValueError("GraSP needs at least one minibatch")
    batches = list(batches)
    with torch.enable_grad():
        net = scoring_copy(model, mask)
        w = weights(net, names)
        params = [w[n] for n in names]
        g_const = mean_gradient(net, batches, params, temperature)
        hg = [torch.zeros_like(p) for p in params]
        for batch in batches:
            g_graph = torch.autograd.grad(_loss(net, batch, temperature), params,
                                          create_graph=True,
                                          allow_unused=True)
            z = sum((gc * gg).sum() for gc, gg in zip(g_const, g_graph) if gg is not None)
            if not torch.is_tensor(z) or not z.requires_grad:
                continue  # the loss is linear in these weights: Hg = 0
            for acc, h in zip(hg, torch.autograd.grad(z, params, allow_unused=True)):
                if h is not None:
                    acc.add_(h.detach())
        hg = [h / len(batches) for h in hg]
    return ({n: gi.cpu() for n, gi in zip(names, g_const)},
            {n: h.cpu() for n, h in zip(names, hg)})


def grasp_scores(model: nn.Module, batches: list, names: list[str],
                 mask: Mask | None = None, temperature: float = 1.0) -> dict[str, Tensor]:
    """``w * Hg`` for each named weight (CPU tensors): the negated GraSP score, so that
    the lowest are the ones GraSP removes."""
    _, hg = gradient_and_hg(model, batches, names, mask, temperature)
    params = weights(model, names)
    w = {n: params[n].detach().cpu() for n in names}
    if mask is not None:
        w = {n: t * mask.tensors[n] for n, t in w.items()}
    return {n: w[n] * hg[n] for n in names}


@register_method
class GraSP(SaliencyAtInit):
    name = "grasp"
    description = ("GraSP (Wang et al. 2020): prune the weights whose removal least reduces "
                   "the gradient flow, -w*Hg at initialisation, train from w0")
    saliency = staticmethod(grasp_scores)
    balanced_batches = True

    @dataclass(frozen=True)
    class Settings:
        batches: int = field(default=1, metadata=setting(lambda v: v >= 1, ">= 1"))
        batch_size: int = field(default=128, metadata=setting(lambda v: v >= 1, ">= 1"))
        temperature: float = field(default=200.0, metadata=setting(lambda v: v > 0, "> 0"))

    def saliency_options(self) -> dict:
        return {"temperature": float(self.settings.temperature)}
