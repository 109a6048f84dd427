"""``snip``: SNIP connection sensitivity at initialisation (Lee et al. 2019).

The score of a weight is ``|g * w|`` at the initial weights w0, with g the gradient of the
mean cross-entropy, averaged over the given minibatches of the training set (the mean of
the per-batch gradients of the batch-mean loss). The lowest scores are pruned in one global
ranking; the pruned network trains from w0 (``start = "init"``).

The forward passes run in training mode (as SNIP's reference code does, so BatchNorm uses
batch statistics) on a deep copy of the network: the caller's parameters, ``.grad``,
BatchNorm running statistics and train/eval mode are left as they were.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from .registry import PruningMethod, register_method, setting, weights

if TYPE_CHECKING:
    from torch import Tensor, nn

    from ..masks import Mask


def scoring_copy(model: nn.Module, mask: Mask | None = None) -> nn.Module:
    """A deep copy of ``model`` in training mode, without gradients, the mask applied."""
    import copy

    net = copy.deepcopy(model)
    net.train()
    for p in net.parameters():
        p.grad = None
        p.requires_grad_(True)
    if mask is not None:
        mask.apply_(net)
    return net


def _loss(net: nn.Module, batch, temperature: float = 1.0) -> Tensor:
    """The batch-mean cross-entropy of the logits divided by ``temperature``."""
    import torch.nn.functional as F

    from ..data import as_model_input

    x, y = batch
    device = next(net.parameters()).device
    return F.cross_entropy(net(as_model_input(x.to(device))) / temperature, y.to(device))


def mean_gradient(net: nn.Module, batches: list, params: list,
                  temperature: float = 1.0) -> list:
    """The mean over ``batches`` of the gradient of the batch-mean cross-entropy."""
    import torch

    total = [torch.zeros_like(p) for p in params]
    for batch in batches:
        grads = torch.autograd.grad(_loss(net, batch, temperature), params,
                                    allow_unused=True)
        for acc, g in zip(total, grads):
            if g is not None:
                acc.add_(g.detach())
    return [acc / len(batches) for acc in total]


def snip_scores(model: nn.Module, batches: list, names: list[str],
                mask: Mask | None = None) -> dict[str, Tensor]:
    """``|g * w|`` for each named weight (CPU tensors); ``mask`` is applied to a copy first."""
    import torch

    if not batches:
        raise ValueError("SNIP needs at least one minibatch")
    with torch.enable_grad():
        net = scoring_copy(model, mask)
        w = weights(net, names)
        params = [w[n] for n in names]
        g = mean_gradient(net, list(batches), params)
    return {n: (gi * p.detach()).abs().cpu() for n, gi, p in zip(names, g, params)}


class SaliencyAtInit(PruningMethod):
    """What SNIP and GraSP share (not registered itself): a control pruned by one global
    ranking of a saliency computed at w0 on minibatches of the members, then trained from w0.
    A subclass names itself and gives ``saliency(model, batches, names, mask)``."""

    kind = "control"
    score_state = "init"
    needs_data = True
    start = "init"
    balanced_batches: ClassVar[bool] = False  # the job draws batches with equal classes

    @dataclass(frozen=True)
    class Settings:
        batches: int = field(default=1, metadata=setting(lambda v: v >= 1, ">= 1"))
        batch_size: int = field(default=128, metadata=setting(lambda v: v >= 1, ">= 1"))

    @staticmethod
    def saliency(model, batches, names, mask, **kw) -> dict:
        raise NotImplementedError

    def saliency_options(self) -> dict:
        """Keyword arguments of the saliency from the settings (none by default)."""
        return {}

    def prune(self, model, mask, *, target, seed, batches=None):
        batches = self._needs_batches(batches)
        scores = self.saliency(model, batches, list(mask.tensors), mask,
                               **self.saliency_options())
        from ..masks import prune_by_score

        return prune_by_score(scores, mask, target)


@register_method
class SNIP(SaliencyAtInit):
    name = "snip"
    description = ("SNIP (Lee et al. 2019): prune the lowest connection sensitivity |g*w| "
                   "at initialisation, train from w0")
    saliency = staticmethod(snip_scores)
