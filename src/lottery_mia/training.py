"""The training loop: dense training and the masked retraining of pruned networks.

:func:`run_training` trains a network from a starting point (step 0, or a rewind step) to
the end of a :class:`~lottery_mia.recipe.Recipe`, optionally with a mask held: pruned
weights (and their gradients) are zeroed after every optimizer step, so they are exactly
zero at every step and in every saved file. Training points are counted in optimizer steps,
so a run can start mid-epoch (rewinding to a step) with that epoch's data order and learning
rate, and it can capture the whole state after exactly k steps (the rewind state). The
checkpoint used is always the final one: test accuracy (measured on the held-out
non-members) is recorded, never used to choose anything.

Long runs are resumable: each epoch's state goes to a resume file, and a rerun continues
from it only when everything that shapes training is unchanged (recipe, seed, start state,
mask, and the job's key: see :mod:`lottery_mia.checkpoints`). The job entry points (what a
training job reads and writes, Algorithm 1's steps) are in :mod:`lottery_mia.jobs.train`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoints import load_resume, resume_fingerprint, save_resume
from .data import steps_per_epoch
from .io import log
from .defences import training_loss
from .defences.dpsgd import dp_settings
from .masks import Mask
from .recipe import Recipe
from .distributed import (Ranks, all_reduce_sum_, check_ranks_agree,
                          use_global_batchnorm)
from .runtime import Runtime, make_runtime

__all__ = ["run_training", "make_step", "Recipe"]


# --------------------------------------------------------------------------- the loop
def _evaluate(model: nn.Module, dataset, batch_size: int, rt: Runtime,
              ranks: Ranks | None = None) -> tuple[float, float]:
    """Accuracy and mean loss; sums stay on the device and are read once at the end. In a
    distributed run each rank evaluates its part of the set and the sums are added up."""
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=rt.device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=rt.device)
    n = 0
    kw = {"shard": ranks.shard} if ranks is not None else {}
    with torch.no_grad(), rt.autocast():
        for xb, yb in dataset.eval_batches(batch_size, **kw):
            out = model(xb).float()
            loss_sum += F.cross_entropy(out, yb, reduction="sum").double()
            correct += (out.argmax(1) == yb).sum()
            n += yb.shape[0]
    if ranks is not None:
        count = torch.tensor(n, dtype=torch.int64, device=rt.device)
        all_reduce_sum_(correct, loss_sum, count)
        n = int(count)
    return int(correct) / max(n, 1), float(loss_sum) / max(n, 1)


class _Totals:
    """Per-epoch training totals, kept on the device (no host sync per step)."""

    def __init__(self, device):
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.correct = torch.zeros((), dtype=torch.int64, device=device)

    def reset(self) -> None:
        self.loss_sum.zero_()
        self.correct.zero_()

    def add(self, loss, out, yb) -> None:
        # float64 like the Python float it replaces: the sums are bit for bit the same
        self.loss_sum.add_(loss.detach().double() * yb.shape[0])
        self.correct.add_((out.detach().argmax(1) == yb).sum())


class _EagerStep:
    """One optimizer step, run op by op: forward, backward, masked SGD, mask re-applied.

    Sync-free: nothing here reads a device tensor on the host. ``forward`` is what runs the
    batch (the model, or its DistributedDataParallel wrapper, whose backward averages the
    gradients over the ranks); the mask works on the model itself.
    """

    def __init__(self, model, opt, mask, rt: Runtime, totals: _Totals, forward=None,
                 loss_fn=None):
        self.model, self.opt, self.mask, self.rt, self.totals = model, opt, mask, rt, totals
        self.forward = forward if forward is not None else model
        self.loss_fn = loss_fn if loss_fn is not None else training_loss(None)

    def __call__(self, xb, yb, lr: float) -> None:
        for group in self.opt.param_groups:
            group["lr"] = lr
        with self.rt.autocast():
            out = self.forward(xb)
            loss = self.loss_fn(out, yb)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.mask is not None:
            self.mask.mask_grads_(self.model)
        self.opt.step()
        if self.mask is not None:
            self.mask.apply_(self.model)
        self.totals.add(loss, out, yb)


@torch.no_grad()
def _graph_sgd_(params, grads, bufs, lr, *, momentum, dampening, weight_decay, nesterov):
    """torch.optim.SGD's multi-tensor update with ``lr`` a device tensor (capturable: the
    learning rate changes between graph replays without re-capture)."""
    if weight_decay:
        grads = torch._foreach_add(grads, params, alpha=weight_decay)
    if momentum:
        torch._foreach_mul_(bufs, momentum)
        torch._foreach_add_(bufs, grads, alpha=1 - dampening)
        grads = torch._foreach_add(grads, bufs, alpha=momentum) if nesterov else bufs
    torch._foreach_add_(params, torch._foreach_mul(grads, -lr))


class _GraphedStep:
    """The fixed-shape training step captured once as a CUDA graph and replayed.

    The first ``warmup`` steps run eagerly (on a side stream on CUDA, as capture requires);
    they are real steps of the run, not extra ones. The next full-shape batch captures
    forward, backward, gradient masking, the SGD update (with the learning rate in a device
    tensor) and mask application on static input buffers; that and every later step of the
    same shape is one replay. A batch of another shape (a ragged last batch) runs eagerly.

    With ``capture=False`` the captured body runs op by op instead (no CUDA needed): the
    tests compare it with :class:`_EagerStep` on the CPU.
    """

    def __init__(self, model, opt, mask, rt: Runtime, totals: _Totals, *, warmup: int = 3,
                 capture: bool = True, loss_fn=None):
        self.model, self.opt, self.mask, self.rt, self.totals = model, opt, mask, rt, totals
        self.eager = _EagerStep(model, opt, mask, rt, totals, loss_fn=loss_fn)
        self.loss_fn = self.eager.loss_fn
        if warmup < 1:
            raise ValueError("warmup must be at least one step (it creates SGD's state)")
        self.warmup, self.capture = warmup, capture
        self.shape = None
        self.graph = None
        self.calls = 0
        self.static_x = self.static_y = None
        self.lr = torch.zeros((), dtype=torch.float32, device=rt.device)
        self.params = [p for p in model.parameters() if p.requires_grad]
        if len(opt.param_groups) != 1:
            raise ValueError("the graphed step supports one parameter group")
        g = opt.param_groups[0]
        self.hyper = dict(momentum=g["momentum"], dampening=g["dampening"],
                          weight_decay=g["weight_decay"], nesterov=g["nesterov"])

    def _body(self) -> None:
        with self.rt.autocast():
            out = self.model(self.static_x)
            loss = self.loss_fn(out, self.static_y)
        loss.backward()
        if self.mask is not None:
            self.mask.mask_grads_(self.model)
        grads = [p.grad for p in self.params]
        bufs = [self.opt.state[p].get("momentum_buffer") for p in self.params]
        if self.hyper["momentum"] and any(b is None for b in bufs):
            raise RuntimeError("the graphed step needs SGD's momentum buffers: warm up first")
        _graph_sgd_(self.params, grads, bufs, self.lr, **self.hyper)
        if self.mask is not None:
            self.mask.apply_(self.model)
        self.totals.add(loss, out, self.static_y)

    def _set_lr(self, lr: float) -> None:
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.lr.fill_(lr)

    def __call__(self, xb, yb, lr: float) -> None:
        if not self.capture:
            return self._call(xb, yb, lr)
        # the side stream, the capture and the replay on the training device, whichever
        # device is current (with cuda:1 and no set_device, streams made on the current
        # device would capture an empty graph and replay nothing, without an error)
        with torch.cuda.device(self.rt.device):
            return self._call(xb, yb, lr)

    def _call(self, xb, yb, lr: float) -> None:
        shape = (tuple(xb.shape), tuple(yb.shape))
        if self.shape is None:
            self.shape = shape
        if shape != self.shape:  # a ragged batch: eager, the graph keeps its shape
            self.eager(xb, yb, lr)
            return
        if self.graph is None and self.calls < self.warmup:
            self.calls += 1
            if self.capture:
                dev = self.rt.device
                side = torch.cuda.Stream(device=dev)
                side.wait_stream(torch.cuda.current_stream(dev))
                with torch.cuda.stream(side):
                    self.eager(xb, yb, lr)
                torch.cuda.current_stream(dev).wait_stream(side)
            else:
                self.eager(xb, yb, lr)
            return
        if self.static_x is None:
            fmt = torch.channels_last if self.rt.channels_last and xb.dim() == 4 else None
            self.static_x = (torch.empty_like(xb, memory_format=fmt) if fmt
                             else torch.empty_like(xb))
            self.static_y = torch.empty_like(yb)
        self.static_x.copy_(xb)
        self.static_y.copy_(yb)
        self._set_lr(lr)
        if not self.capture:
            self.opt.zero_grad(set_to_none=True)
            self._body()
            return
        if self.graph is None:
            self.opt.zero_grad(set_to_none=True)  # backward allocates grads in the graph pool
            self.graph = torch.cuda.CUDAGraph()
            # thread_local: the batch producer's thread (ImageNet: decoding on a side stream)
            # keeps working during the capture; only this thread's calls are checked
            with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
                self._body()  # synchronises once, on entry
        self.graph.replay()


def make_step(model, opt, mask, rt: Runtime, totals: _Totals, forward=None, loss_fn=None):
    """The step function of a run: graphed when the runtime says so, else eager (always
    eager through a DistributedDataParallel ``forward``); ``loss_fn`` the training loss
    (:func:`lottery_mia.defences.training_loss`: the cross-entropy without a defence)."""
    if rt.cuda_graphs and forward is None:
        return _GraphedStep(model, opt, mask, rt, totals, loss_fn=loss_fn)
    return _EagerStep(model, opt, mask, rt, totals, forward=forward, loss_fn=loss_fn)


@contextlib.contextmanager
def _cudnn_benchmark(on: bool):
    """cuDNN picks the fastest convolution algorithms for the run's fixed shapes."""
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = on or saved
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = saved


def _check_distributed(recipe: Recipe, n: int, ranks: Ranks) -> None:
    """A distributed run splits every global batch evenly over its ranks."""
    if recipe.batch_size % ranks.world:
        raise ValueError(f"training.<dataset>.<arch>.batch_size {recipe.batch_size} does not "
                         f"split evenly over gpus={ranks.world} ranks; use a multiple of "
                         f"{ranks.world}")
    if n < recipe.batch_size:
        raise ValueError(f"{n} training images are fewer than one batch of "
                         f"{recipe.batch_size}: a distributed run (gpus={ranks.world}) needs "
                         "at least one full batch; lower batch_size or gpus")


def duration(seconds: float) -> str:
    """'45s', '3m05s', '2h07m'."""
    s = int(round(max(seconds, 0.0)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def progress(elapsed: float, done: float, left: float) -> str:
    """' elapsed 3m05s, ETA 6m10s': the job's time so far and, at the pace of the ``done``
    units (epochs or steps) this run took, the time its ``left`` units will take."""
    eta = elapsed / done * left if done > 0 else float("nan")
    return (f"; elapsed {duration(elapsed)}, ETA "
            + (duration(eta) if math.isfinite(eta) else "n/a"))


def run_training(model: nn.Module, train_set, test_set, recipe: Recipe, *, seed: int,
                 device: torch.device, mask: Mask | None = None, start_epoch: int = 0,
                 capture_epoch: int | None = None, start_step: int | None = None,
                 capture_step: int | None = None, resume_path: Path | None = None,
                 resume_key: str = "", runtime: Runtime | None = None,
                 ranks: Ranks | None = None) -> dict:
    """Train ``model`` from a starting point to the end of ``recipe.epochs``.

    Training points are counted in optimizer steps: ``start_step`` (default
    ``start_epoch`` x steps per epoch) is the number of steps already taken, so training
    resumes mid-epoch with that epoch's data order and learning rate when it is not a
    multiple of the epoch length. With ``mask``, pruned weights are zeroed after every
    optimizer step. With ``capture_step`` k (or ``capture_epoch`` e: k = e x steps per
    epoch), the whole state after exactly k steps is returned as
    ``result["captured_state"]`` (the rewind point). Returns the history and final metrics.
    ``runtime`` (default: :func:`make_runtime` of ``device``) decides AMP, channels_last and
    CUDA graphs.

    ``ranks`` (world > 1): this process is one rank of a distributed run
    (:mod:`lottery_mia.distributed`; the process group is up): the model is wrapped in
    DistributedDataParallel with BatchNorm over the global batch, each rank trains on its
    part of every global batch (steps per epoch count global batches), the epoch totals and
    evaluations are summed over the ranks, and only rank 0 writes the resume state. The
    step is eager (no CUDA graph) under DDP.
    """
    rt = runtime if runtime is not None else make_runtime(device)
    device = rt.device
    dist_run = ranks is not None and ranks.world > 1
    if not dist_run:
        ranks = None
    else:
        _check_distributed(recipe, len(train_set), ranks)
        use_global_batchnorm(model, nccl=device.type == "cuda")
        if rt.cuda_graphs:
            log("CUDA graphs are off in a distributed run (DistributedDataParallel steps run "
                "eagerly)")
            rt = dataclasses.replace(rt, cuda_graphs=False)
    dp = dp_settings(recipe.defence)
    if dp is not None:
        if dist_run:
            raise ValueError("DP-SGD trains on one device: set the recipe's gpus to 1 "
                             "(training.<dataset>.<arch>.gpus)")
        if rt.cuda_graphs or rt.amp:
            log("DP-SGD: CUDA graphs and AMP are off (per-sample gradients run eagerly, "
                "in float32)")
            rt = dataclasses.replace(rt, cuda_graphs=False, amp=False)
    rt.prepare(model)
    opt = rt.optimizer(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                       weight_decay=recipe.weight_decay, nesterov=recipe.nesterov)
    if mask is not None:
        mask = mask.to(device)
        mask.apply_(model)
    history: list[dict] = []
    captured = None
    n_steps = steps_per_epoch(len(train_set), recipe.batch_size)
    total_steps = n_steps * recipe.epochs
    if start_step is None:
        start_step = start_epoch * n_steps
    budget = dp_forward = dp_noise = None
    if dp is not None:  # this run's noise for its epsilon, Opacus's module and optimizer
        from .defences.dpsgd import private_run

        dp_forward, opt, dp_noise, budget = private_run(
            model, opt, dp, len(train_set), recipe.batch_size,
            total_steps - min(start_step, total_steps))
    if capture_step is None and capture_epoch is not None:
        capture_step = capture_epoch * n_steps
    if not 0 <= start_step < total_steps:
        raise ValueError(f"start step {start_step} is outside the {total_steps} steps of "
                         f"{recipe.epochs} epochs x {n_steps} steps")
    if capture_step is not None and not 0 <= capture_step <= total_steps:
        raise ValueError(f"rewind step {capture_step} is outside the {total_steps} steps of "
                         f"{recipe.epochs} epochs x {n_steps} steps")
    first_epoch, skip = divmod(start_step, n_steps)
    fingerprint = resume_fingerprint(recipe_fingerprint=recipe.fingerprint(), seed=seed,
                                     start_epoch=first_epoch, key=f"{resume_key}:step{start_step}",
                                     model=model, mask=mask)

    epoch0 = first_epoch
    saved = _load_resume(resume_path, ranks, fingerprint=fingerprint, model=model,
                         optimizer=opt, start_epoch=first_epoch, epochs=recipe.epochs)
    if saved is not None:
        history, captured, epoch0 = saved["history"], saved["captured"], saved["next_epoch"]
        skip = 0
    writes = ranks is None or ranks.is_main

    def capture_now():
        return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}

    forward = None
    if ranks is not None:
        from torch.nn.parallel import DistributedDataParallel

        # BatchNorm's buffers are updated from the global batch on every rank alike, so
        # DDP need not broadcast them each step (check_ranks_agree verifies at the end)
        forward = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            broadcast_buffers=False)
    totals = _Totals(device)
    if dp is not None:
        from .defences.dpsgd import PrivateStep

        train_step = PrivateStep(model, opt, mask, totals, dp_forward,
                                 training_loss(recipe.defence))
    else:
        train_step = make_step(model, opt, mask, rt, totals, forward=forward,
                               loss_fn=training_loss(recipe.defence))
    batch_kw = {"shard": ranks.shard} if ranks is not None else {}
    t_start = time.time()
    lr = recipe.lr_at(epoch0)
    with _cudnn_benchmark(rt.is_cuda):
        for epoch in range(epoch0, recipe.epochs):
            model.train()
            t0 = time.time()
            totals.reset()
            seen = 0
            order_seed = seed * 1_000_003 + epoch  # same order for the dense run and its tickets
            if dp_noise is not None:  # the epoch's noise, the same after a resume
                dp_noise.manual_seed(order_seed + 7_919)
            first = skip if epoch == first_epoch else 0  # steps the start state already took
            kw = dict(batch_kw, skip=first) if first else batch_kw
            batches = train_set.train_batches(recipe.batch_size, order_seed, recipe.augment,
                                              **kw)
            for step, (xb, yb) in enumerate(batches, start=first):
                if captured is None and capture_step == epoch * n_steps + step:
                    captured = capture_now()
                lr = recipe.lr_at(epoch + step / n_steps)
                train_step(xb, yb, lr)
                seen += yb.shape[0]
                if n_steps >= 200 and (step + 1) % (n_steps // 10) == 0:  # long epochs: 10 lines
                    done = (epoch - epoch0) * n_steps + step + 1 - first
                    left = (recipe.epochs - epoch) * n_steps - step - 1
                    log(f"  epoch {epoch + 1} step {step + 1}/{n_steps} "
                        f"loss={float(totals.loss_sum) / seen:.4f} ({time.time() - t0:.0f}s)"
                        + progress(time.time() - t_start, done, left))
            if ranks is not None:  # the epoch's totals over every rank's part
                all_reduce_sum_(totals.loss_sum, totals.correct)
                seen *= ranks.world
            loss_sum, correct = float(totals.loss_sum), int(totals.correct)  # once per epoch
            if not math.isfinite(loss_sum):
                raise FloatingPointError(f"training diverged at epoch {epoch + 1}: loss is "
                                         f"{loss_sum}; lower the learning rate")
            seen = max(seen, 1)
            row = {"epoch": epoch + 1, "lr": lr, "train_loss": loss_sum / seen,
                   "train_acc_running": correct / seen, "seconds": time.time() - t0}
            last = epoch + 1 == recipe.epochs
            if last or (recipe.eval_every > 0 and (epoch + 1) % recipe.eval_every == 0):
                row["test_acc"], row["test_loss"] = _evaluate(model, test_set,
                                                              recipe.eval_batch_size, rt,
                                                              ranks)
            history.append(row)
            log(f"epoch {epoch + 1}/{recipe.epochs} lr={lr:.4g} loss={row['train_loss']:.4f} "
                f"train_acc={row['train_acc_running']:.4f}"
                + (f" test_acc={row['test_acc']:.4f}" if "test_acc" in row else "")
                + f" ({row['seconds']:.1f}s)"
                + progress(time.time() - t_start, epoch + 1 - epoch0, recipe.epochs - epoch - 1))
            if resume_path is not None and not last and writes:
                save_resume(resume_path, fingerprint=fingerprint, model=model, optimizer=opt,
                            history=history, captured=captured, next_epoch=epoch + 1)
        if capture_step is not None and captured is None:  # capture_step == the last step
            captured = capture_now()
        train_acc, train_loss = _evaluate(model, train_set, recipe.eval_batch_size, rt, ranks)
        test_acc, test_loss = _evaluate(model, test_set, recipe.eval_batch_size, rt, ranks)
    result = {"history": history, "captured_state": captured, "train_acc": train_acc,
              "train_loss": train_loss, "test_acc": test_acc, "test_loss": test_loss,
              "train_seconds": time.time() - t_start, "steps_per_epoch": n_steps}
    if budget is not None:
        result["privacy"] = budget
        dp_forward.remove_hooks()
        for p in model.parameters():
            p.grad_sample = None
    if ranks is not None:
        result["distributed"] = check_ranks_agree(model, mask)
        del forward
        use_global_batchnorm(model, on=False)
    model.to(memory_format=torch.contiguous_format)
    if writes and resume_path is not None and Path(resume_path).exists():
        Path(resume_path).unlink()
    return result


def _load_resume(path, ranks: Ranks | None, **kw) -> dict | None:
    """The resume state (:func:`lottery_mia.checkpoints.load_resume`). In a distributed run
    rank 0 reads it first (and discards it if it does not fit); the others read it after
    (every rank loads the same state into its model and optimizer), and all must agree on
    where training goes on."""
    if ranks is None:
        return load_resume(path, **kw)
    import torch.distributed as dist

    saved = load_resume(path, **kw) if ranks.is_main else None
    dist.barrier()
    if not ranks.is_main:
        saved = load_resume(path, **kw)
    device = next(kw["model"].parameters()).device
    nxt = torch.tensor([saved["next_epoch"] if saved else -1] * 2, dtype=torch.int64,
                       device=device)
    nxt[1] = -nxt[1]
    dist.all_reduce(nxt, op=dist.ReduceOp.MAX)  # max and -min of the ranks' next epochs
    if int(nxt[0]) != -int(nxt[1]):
        raise RuntimeError(f"the ranks read different resume states from {path}; delete it "
                           "and rerun")
    return saved
