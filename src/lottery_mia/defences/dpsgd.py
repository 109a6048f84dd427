"""DP-SGD (Abadi et al., CCS 2016) through Opacus: per-sample gradients clipped to
``max_grad_norm``, Gaussian noise of ``noise_multiplier x max_grad_norm`` added to their
sum, for every network of the recipe.

``training.<dataset>.<arch>.defence: {dpsgd: {target_epsilon: 4, delta: 1e-5,
max_grad_norm: 1.0}}``. What the pipeline does with it:

- **The networks.** BatchNorm mixes the samples of a batch, so a per-sample gradient does
  not exist: every network of the recipe (dense, tickets, controls, reference models) is
  built with GroupNorm instead (``norm: group`` in its checkpoint's architecture record, as
  Opacus's ``ModuleValidator.fix`` would make it).
- **The noise.** Each training run (the dense network's, each ticket's retraining) gets the
  noise multiplier with which that run alone spends ``target_epsilon`` at ``delta``
  (Opacus's RDP accountant, sampling rate batch size / members, the run's optimizer steps).
  The noise is drawn from a generator seeded per epoch from the run's seed, so a resumed run
  draws what an uninterrupted one would have.
- **The mask.** A ticket's per-sample gradients are masked before clipping (pruned weights
  spend no clipping budget); the noise lands on pruned weights too, and the mask is
  re-applied after every step, so they stay exactly zero.
- **The budget.** ``metrics.json`` records the run's own epsilon and ``epsilon_total``: the
  run composed (RDP) with every run its start state and mask derive from: the dense run for
  a ticket whose mask comes from the trained network (one-shot, random re-initialisation),
  and for IMP round r also the r - 1 earlier rounds' retraining. Pruning a DP-trained
  network by magnitude and rewinding to its states is post-processing and costs nothing.

Where the guarantee does not hold, said plainly (and in ``metrics.json`` under
``guarantee``):

- the accountant assumes Poisson sampling; the pipeline's batches are a shuffled
  partition of fixed size (the common practice; its epsilon is an estimate, not a proof);
- SNIP and GraSP read training batches, without noise, to choose the mask: their tickets
  have no guarantee;
- the test-set evaluations logged during training use non-members only and cost nothing,
  but the membership split itself is public to the pipeline, not to the adversary.

Opacus and torch are imported when a network trains, never at config time.
"""

from __future__ import annotations

import math

from .base import DEFENCES, register_defence

SAMPLING_NOTE = ("the RDP accountant assumes Poisson sampling; batches here are a shuffled "
                 "partition of fixed size, so epsilon is an estimate, not a proof")


@register_defence("dpsgd", defaults={"target_epsilon": 8.0, "delta": 1e-5,
                                      "max_grad_norm": 1.0},
                  strength=("target_epsilon", "ε", False),
                  description="DP-SGD (Opacus): per-sample clipping and Gaussian noise for a "
                              "target epsilon at delta, GroupNorm networks")
class DPSGD:
    private = True  # the training loop makes its step private (see training.py)

    def __init__(self, settings: dict):
        key = "training.<dataset>.<arch>.defence.dpsgd"
        for name in ("target_epsilon", "delta", "max_grad_norm"):
            value = settings.get(name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    not math.isfinite(value) or value <= 0:
                raise ValueError(f"config key {key}.{name}: must be a positive number, got "
                                 f"{value!r}")
        if settings["delta"] >= 1:
            raise ValueError(f"config key {key}.delta: must be below 1 (well below 1 / the "
                             f"number of members), got {settings['delta']!r}")
        self.target_epsilon = float(settings["target_epsilon"])
        self.delta = float(settings["delta"])
        self.max_grad_norm = float(settings["max_grad_norm"])

    def loss(self, logits, labels):
        import torch.nn.functional as F

        return F.cross_entropy(logits.float(), labels)


def dp_settings(defence: dict | None) -> DPSGD | None:
    """The DP-SGD settings of a recipe's ``defence`` (None without DP-SGD)."""
    if not defence or "dpsgd" not in defence:
        return None
    return DPSGD({**DEFENCES["dpsgd"].defaults, **(defence["dpsgd"] or {})})


def noise_multiplier(target_epsilon: float, delta: float, sample_rate: float,
                     steps: int) -> float:
    """The noise multiplier with which ``steps`` steps at ``sample_rate`` spend
    ``target_epsilon`` at ``delta`` (Opacus's RDP accountant)."""
    from opacus.accountants.utils import get_noise_multiplier

    return float(get_noise_multiplier(target_epsilon=target_epsilon, target_delta=delta,
                                      sample_rate=sample_rate, steps=int(steps),
                                      accountant="rdp"))


def epsilon_of(history: list[tuple[float, float, int]], delta: float) -> float:
    """Epsilon at ``delta`` of the composed runs ``history`` ((noise multiplier, sample
    rate, steps) each), by Opacus's RDP accountant."""
    from opacus.accountants import RDPAccountant

    acc = RDPAccountant()
    acc.history = [(float(s), float(q), int(n)) for s, q, n in history]
    return float(acc.get_epsilon(delta))


def run_budget(dp: DPSGD, n_members: int, batch_size: int, steps: int) -> dict:
    """The noise and budget of one training run of ``steps`` optimizer steps."""
    q = min(batch_size / n_members, 1.0)
    sigma = noise_multiplier(dp.target_epsilon, dp.delta, q, steps)
    return {"noise_multiplier": sigma, "sample_rate": q, "steps": int(steps),
            "max_grad_norm": dp.max_grad_norm, "delta": dp.delta,
            "target_epsilon": dp.target_epsilon,
            "epsilon": epsilon_of([(sigma, q, steps)], dp.delta)}


def ticket_budget(dp: DPSGD, own: dict, *, dense_steps: int, method, imp_round) -> dict:
    """``own`` (:func:`run_budget` of a ticket's retraining) with ``epsilon_total``: composed
    with the dense run and, for IMP round r, the r - 1 earlier rounds (each as long as this
    one); and ``guarantee``: what breaks it for this method, if anything."""
    q = own["sample_rate"]
    dense = (noise_multiplier(dp.target_epsilon, dp.delta, q, dense_steps), q, dense_steps)
    rounds = max(int(imp_round or 1), 1)
    history = [dense] + [(own["noise_multiplier"], q, own["steps"])] * rounds
    out = dict(own, epsilon_total=epsilon_of(history, dp.delta),
               composed_runs=len(history), guarantee=SAMPLING_NOTE)
    if getattr(method, "needs_data", False):
        out["guarantee"] = (f"none: {method.name} reads training batches without noise to "
                            "choose the mask; " + SAMPLING_NOTE)
        out["epsilon_total"] = math.inf
    return out


def make_private(model, optimizer, dp: DPSGD, budget: dict, batch_size: int):
    """(the per-sample-gradient model to run batches through, the DP optimizer, its noise
    generator) for one run with ``budget`` (:func:`run_budget`)."""
    import torch
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer
    from opacus.validators import ModuleValidator

    errors = ModuleValidator.validate(model, strict=False)
    if errors:
        raise ValueError(f"this network cannot train with DP-SGD: {errors[:3]} (its "
                         "recipe's networks should have been built with GroupNorm)")
    generator = torch.Generator(device=next(model.parameters()).device)
    forward = GradSampleModule(model, loss_reduction="mean")
    opt = DPOptimizer(optimizer, noise_multiplier=budget["noise_multiplier"],
                      max_grad_norm=dp.max_grad_norm, expected_batch_size=batch_size,
                      loss_reduction="mean", generator=generator)
    return forward, opt, generator


def private_run(model, optimizer, dp: DPSGD, n_members: int, batch_size: int, steps: int):
    """(Opacus's per-sample-gradient module, its DP optimizer, the noise generator, the
    run's budget) for a run of ``steps`` steps, logged."""
    from ..io import log

    budget = run_budget(dp, n_members, batch_size, steps)
    forward, opt, generator = make_private(model, optimizer, dp, budget, batch_size)
    log(f"DP-SGD: noise multiplier {budget['noise_multiplier']:.4f}, clipping at "
        f"{dp.max_grad_norm:g}, sampling rate {budget['sample_rate']:.4f}, "
        f"{budget['steps']} steps: epsilon {budget['epsilon']:.3f} at delta {dp.delta:g} "
        "for this run")
    return forward, opt, generator, budget


class PrivateStep:
    """One DP-SGD step, as the training loop calls a step (``step(xb, yb, lr)``):
    ``forward`` is Opacus's per-sample-gradient module and ``opt`` its DPOptimizer (clip
    each sample's gradient, add noise to the sum, average, then SGD). A ticket's per-sample
    gradients are masked before clipping; the noise lands on pruned weights too, and the
    mask re-applied after the step zeroes them again. Eager and float32."""

    def __init__(self, model, opt, mask, totals, forward, loss_fn):
        self.model, self.opt, self.mask, self.totals = model, opt, mask, totals
        self.forward, self.loss_fn = forward, loss_fn

    def __call__(self, xb, yb, lr: float) -> None:
        for group in self.opt.param_groups:
            group["lr"] = lr
        out = self.forward(xb)
        loss = self.loss_fn(out, yb)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.mask is not None:
            params = dict(self.model.named_parameters())
            for name, keep in self.mask.tensors.items():
                per_sample = getattr(params[name], "grad_sample", None)
                if per_sample is not None:
                    per_sample.mul_(keep)
        self.opt.step()
        if self.mask is not None:
            self.mask.apply_(self.model)
        self.totals.add(loss, out, yb)
