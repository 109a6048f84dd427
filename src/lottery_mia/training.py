"""Dense training and the retraining of pruned networks (the paper's Algorithm 1).

Dense run (sparsity 0):
  1. seed, build the network, keep its initial state w0 (``init.pt``, written with the other
     outputs at the end so a killed job leaves no output that looks valid);
  2. train for ``epochs`` with SGD + momentum + weight decay and the LR schedule, saving the
     whole state after exactly ``rewind_step`` optimizer steps (``pruning.rewind_step``, or
     ``pruning.rewind_epoch`` x steps per epoch) as ``rewind.pt`` (= w0 at step 0);
  3. save the final state (``model.pt``) and the metrics.

Pruned run (sparsity p > 0), given a method's mask (``lottery_mia.pruning``: the mask and the
start state are made there):
  4. start from the method's state (the whole rewind state, w0, or fresh random weights),
     mask applied;
  5. retrain from the start step to the end of ``epochs`` with the identical recipe, data
     order and LR schedule (mid-epoch if the start step is), zeroing pruned weights (and
     their gradients) after every optimizer step, so they are exactly zero at every step and
     in every saved file.

The checkpoint used is always the final one: test accuracy (measured on the held-out
non-members) is recorded, never used to choose anything.

Long runs are resumable: each epoch's state goes to ``resume.pt`` beside the outputs, and a
rerun continues from it only when everything that shapes training is unchanged (recipe, seed,
membership table, data source and root, start state, mask): see ``checkpoints.py``. A job
holds a lock on its output folder while it runs.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .checkpoints import (load_resume, mask_digest, members_digest, data_identity,
                          model_spec, resume_fingerprint, save_checkpoint, save_resume)
from .data import Augment, rows_image_set, steps_per_epoch
from .io import log, write_json
from .locks import output_lock
from .masks import Mask, model_sparsity
from .membership import read_membership
from .models import build_model
from .runtime import Runtime, make_runtime

SCHEDULES = ("cosine", "step", "constant")


@dataclass(frozen=True)
class Recipe:
    """Training hyper-parameters of one (dataset, architecture) pair."""

    epochs: int
    batch_size: int
    lr: float
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    schedule: str = "cosine"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    warmup_epochs: int = 0
    width: int = 64
    augment: Augment = field(default_factory=Augment)
    eval_batch_size: int = 512
    eval_every: int = 1
    num_workers: int = 4

    @classmethod
    def from_dict(cls, d: dict, key: str = "training") -> "Recipe":
        d = dict(d)
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"config key {key}: unknown setting(s) {unknown}; "
                             f"known: {sorted(known)}")
        for required in ("epochs", "batch_size", "lr"):
            if required not in d:
                raise ValueError(f"config key {key}.{required} is missing")
        d["augment"] = Augment.from_dict(d.get("augment"))
        d["milestones"] = tuple(int(m) for m in d.get("milestones", ()))
        r = cls(**d)
        if r.schedule not in SCHEDULES:
            raise ValueError(f"config key {key}.schedule: {r.schedule!r} is not one of {SCHEDULES}")
        if r.epochs < 1 or r.batch_size < 1 or r.lr <= 0:
            raise ValueError(f"config key {key}: epochs, batch_size and lr must be positive")
        return r

    def lr_at(self, epoch_float: float) -> float:
        if self.warmup_epochs > 0 and epoch_float < self.warmup_epochs:
            return self.lr * (epoch_float + 1e-8) / self.warmup_epochs
        if self.schedule == "cosine":
            span = max(self.epochs - self.warmup_epochs, 1e-8)
            t = (epoch_float - self.warmup_epochs) / span
            return 0.5 * self.lr * (1.0 + math.cos(math.pi * min(max(t, 0.0), 1.0)))
        if self.schedule == "step":
            return self.lr * self.gamma ** sum(epoch_float >= m for m in self.milestones)
        return self.lr

    def fingerprint(self) -> str:
        """What shapes the trained network (every field but the loader's worker count)."""
        fields = {k: v for k, v in asdict(self).items() if k != "num_workers"}
        return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str)
                              .encode()).hexdigest()[:16]


# Checkpoints live in checkpoints.py; masks and the states pruned networks start from in
# pruning/ (registry of methods, and jobs.py).


# --------------------------------------------------------------------------- the loop
def _evaluate(model: nn.Module, dataset, batch_size: int, rt: Runtime) -> tuple[float, float]:
    """Accuracy and mean loss; sums stay on the device and are read once at the end."""
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=rt.device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=rt.device)
    n = 0
    with torch.no_grad(), rt.autocast():
        for xb, yb in dataset.eval_batches(batch_size):
            out = model(xb).float()
            loss_sum += F.cross_entropy(out, yb, reduction="sum").double()
            correct += (out.argmax(1) == yb).sum()
            n += yb.shape[0]
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

    Sync-free: nothing here reads a device tensor on the host.
    """

    def __init__(self, model, opt, mask, rt: Runtime, totals: _Totals):
        self.model, self.opt, self.mask, self.rt, self.totals = model, opt, mask, rt, totals

    def __call__(self, xb, yb, lr: float) -> None:
        for group in self.opt.param_groups:
            group["lr"] = lr
        with self.rt.autocast():
            out = self.model(xb)
            loss = F.cross_entropy(out.float(), yb)
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
                 capture: bool = True):
        self.model, self.opt, self.mask, self.rt, self.totals = model, opt, mask, rt, totals
        self.eager = _EagerStep(model, opt, mask, rt, totals)
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
            loss = F.cross_entropy(out.float(), self.static_y)
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
        shape = (tuple(xb.shape), tuple(yb.shape))
        if self.shape is None:
            self.shape = shape
        if shape != self.shape:  # a ragged batch: eager, the graph keeps its shape
            self.eager(xb, yb, lr)
            return
        if self.graph is None and self.calls < self.warmup:
            self.calls += 1
            if self.capture:
                side = torch.cuda.Stream()
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side):
                    self.eager(xb, yb, lr)
                torch.cuda.current_stream().wait_stream(side)
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
            with torch.cuda.graph(self.graph):  # synchronises once, on entry
                self._body()
        self.graph.replay()


def make_step(model, opt, mask, rt: Runtime, totals: _Totals):
    """The step function of a run: graphed when the runtime says so, else eager."""
    if rt.cuda_graphs:
        return _GraphedStep(model, opt, mask, rt, totals)
    return _EagerStep(model, opt, mask, rt, totals)


def run_training(model: nn.Module, train_set, test_set, recipe: Recipe, *, seed: int,
                 device: torch.device, mask: Mask | None = None, start_epoch: int = 0,
                 capture_epoch: int | None = None, start_step: int | None = None,
                 capture_step: int | None = None, resume_path: Path | None = None,
                 resume_key: str = "", runtime: Runtime | None = None) -> dict:
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
    """
    rt = runtime if runtime is not None else make_runtime(device)
    device = rt.device
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
    saved = load_resume(resume_path, fingerprint=fingerprint, model=model, optimizer=opt,
                        start_epoch=first_epoch, epochs=recipe.epochs)
    if saved is not None:
        history, captured, epoch0 = saved["history"], saved["captured"], saved["next_epoch"]
        skip = 0

    def capture_now():
        return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}

    totals = _Totals(device)
    train_step = make_step(model, opt, mask, rt, totals)
    t_start = time.time()
    lr = recipe.lr_at(epoch0)
    for epoch in range(epoch0, recipe.epochs):
        model.train()
        t0 = time.time()
        totals.reset()
        seen = 0
        order_seed = seed * 1_000_003 + epoch  # same order for the dense run and its tickets
        for step, (xb, yb) in enumerate(train_set.train_batches(recipe.batch_size, order_seed,
                                                                 recipe.augment)):
            if epoch == first_epoch and step < skip:
                continue  # steps the start state already took (rewinding to a step)
            if captured is None and capture_step == epoch * n_steps + step:
                captured = capture_now()
            lr = recipe.lr_at(epoch + step / n_steps)
            train_step(xb, yb, lr)
            seen += yb.shape[0]
            if n_steps >= 200 and (step + 1) % (n_steps // 10) == 0:  # long epochs: 10 lines
                log(f"  epoch {epoch + 1} step {step + 1}/{n_steps} "
                    f"loss={float(totals.loss_sum) / seen:.4f} ({time.time() - t0:.0f}s)")
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
                                                          recipe.eval_batch_size, rt)
        history.append(row)
        log(f"epoch {epoch + 1}/{recipe.epochs} lr={lr:.4g} loss={row['train_loss']:.4f} "
            f"train_acc={row['train_acc_running']:.4f}"
            + (f" test_acc={row['test_acc']:.4f}" if "test_acc" in row else "")
            + f" ({row['seconds']:.1f}s)")
        if resume_path is not None and not last:
            save_resume(resume_path, fingerprint=fingerprint, model=model, optimizer=opt,
                        history=history, captured=captured, next_epoch=epoch + 1)
    if capture_step is not None and captured is None:  # capture_step == the last step
        captured = capture_now()
    train_acc, train_loss = _evaluate(model, train_set, recipe.eval_batch_size, rt)
    test_acc, test_loss = _evaluate(model, test_set, recipe.eval_batch_size, rt)
    model.to(memory_format=torch.contiguous_format)
    if resume_path is not None and Path(resume_path).exists():
        Path(resume_path).unlink()
    return {"history": history, "captured_state": captured, "train_acc": train_acc,
            "train_loss": train_loss, "test_acc": test_acc, "test_loss": test_loss,
            "train_seconds": time.time() - t_start, "steps_per_epoch": n_steps}


# --------------------------------------------------------------------------- entry points
@dataclass
class DataSpec:
    """Where a job finds its data: the dataset's source, root and membership table."""

    dataset: str  # the config's name for it
    source: str
    root: str | None
    membership: str

    @property
    def key(self) -> str:
        return f"datasets.{self.dataset}.root"


def member_and_test_sets(data: DataSpec, recipe: Recipe, device) -> tuple:
    """The members (training set) and non-members (test set) of a membership table, read
    from the pool each row names (a reference model's members can come from any pool)."""
    table = read_membership(data.membership)
    mem = table[table["member"]]
    non = table[~table["member"]]
    channels_last = torch.device(device).type == "cuda"
    kw = dict(key=data.key, device=device, num_workers=recipe.num_workers,
              channels_last=channels_last)
    train_set = rows_image_set(data.source, data.root, mem, **kw)
    test_set = rows_image_set(data.source, data.root, non, **kw)
    return train_set, test_set


def _data_key(data: DataSpec) -> str:
    """What the resume fingerprint needs of the data: the source and root it is read from and
    a content hash of the membership table's member rows (the training set)."""
    members = members_digest(read_membership(data.membership))
    return f"{data_identity(data.source, data.root)}:{members}"


def network_identity(data: DataSpec, arch: str, seed: int, method: str, sparsity: float,
                     imp_round: int | None = None, mask: str | None = None) -> dict:
    """Which network a checkpoint holds, as its training job was asked for it (checked by
    :func:`lottery_mia.checkpoints.check_trained_network` before anything reads it)."""
    return {"dataset": data.dataset, "arch": arch, "seed": int(seed), "method": method,
            "sparsity": float(sparsity), "imp_round": imp_round, "mask_digest": mask}


def _recipe(recipe: dict, key: str, num_workers: int | None) -> Recipe:
    """The recipe of a job, with the loader's worker count (how, not what) put in."""
    d = dict(recipe)
    if num_workers is not None:
        d["num_workers"] = int(num_workers)
    return Recipe.from_dict(d, key)


def _setup(threads: int | None, seed: int) -> None:
    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


def rewind_step_of(rewind_epoch: int | None, rewind_step: int | None, n_steps: int,
                   epochs: int, recipe_key: str = "training") -> int:
    """The rewind point in optimizer steps: ``pruning.rewind_step``, or
    ``pruning.rewind_epoch`` x steps per epoch. Exactly one of the two is set, and the point
    lies before the last step (a ticket rewound to the end would never be retrained)."""
    if (rewind_epoch is None) == (rewind_step is None):
        raise ValueError("config keys pruning.rewind_epoch and pruning.rewind_step: set "
                         f"exactly one of them (got rewind_epoch={rewind_epoch!r}, "
                         f"rewind_step={rewind_step!r})")
    step = rewind_step if rewind_step is not None else rewind_epoch * n_steps
    key = "rewind_step" if rewind_step is not None else "rewind_epoch"
    value = rewind_step if rewind_step is not None else rewind_epoch
    if not 0 <= step < epochs * n_steps:
        raise ValueError(f"config key pruning.{key}={value} must be within [0, "
                         f"{epochs if key == 'rewind_epoch' else epochs * n_steps}) of "
                         f"{recipe_key} ({epochs} epochs x {n_steps} steps): a ticket rewound "
                         "to the last step would never be retrained; lower it or raise the "
                         "epochs")
    return step


def train_dense(*, data: DataSpec, arch: str, recipe: dict, seed: int, device: str,
                out_model, out_init, out_rewind, out_metrics, rewind_epoch: int | None = 0,
                rewind_step: int | None = None, threads: int | None = None,
                recipe_key: str = "training", runtime: dict | None = None,
                num_workers: int | None = None) -> dict:
    """Steps 1-2 of Algorithm 1: w0, dense training, the rewind state (after exactly
    ``rewind_step`` optimizer steps, or at the start of epoch ``rewind_epoch``).
    ``num_workers`` (ImageNet loader processes) overrides the recipe's."""
    from .devices import claim_device

    rec = _recipe(recipe, recipe_key, num_workers)
    _setup(threads, seed)
    with output_lock(Path(out_model).parent), \
            claim_device(device, slots=(runtime or {}).get("gpu_slots")) as claim:
        dev = torch.device(claim.device)
        log(f"dense {arch} on {data.dataset}: device {dev}, recipe {asdict(rec)}")
        spec = model_spec(arch, data.source, rec.width)
        model = build_model(**spec)  # seeded: w0 is a function of the seed alone
        init_model = copy.deepcopy(model)  # w0, written with the other outputs (no RNG use)
        train_set, test_set = member_and_test_sets(data, rec, dev)
        n_steps = steps_per_epoch(len(train_set), rec.batch_size)
        capture = rewind_step_of(rewind_epoch, rewind_step, n_steps, rec.epochs, recipe_key)
        log(f"{len(train_set)} members (training set), {len(test_set)} non-members (test set); "
            f"rewind point: step {capture} ({capture / n_steps:g} epochs)")
        resume = Path(out_model).with_name("resume.pt")
        res = run_training(model, train_set, test_set, rec, seed=seed, device=dev,
                           capture_step=capture, resume_path=resume,
                           resume_key=f"dense:{arch}:{capture}:{_data_key(data)}",
                           runtime=make_runtime(dev, runtime))
        rewind_model = build_model(**spec)
        rewind_model.load_state_dict(res["captured_state"])
        identity = network_identity(data, arch, seed, "dense", 0.0)
        # Every output is written at the end, so a killed job leaves none that look valid.
        save_checkpoint(out_init, init_model, spec, epoch=0, step=0, sparsity=0.0,
                        identity={**identity, "state": "init"})
        save_checkpoint(out_rewind, rewind_model, spec, epoch=capture / n_steps, step=capture,
                        sparsity=0.0, identity={**identity, "state": "rewind"})
        save_checkpoint(out_model, model.cpu(), spec, epoch=rec.epochs,
                        step=rec.epochs * n_steps, sparsity=0.0, identity=identity)
    metrics = _metrics(arch, data, 0.0, rec, seed, capture, n_steps, res, str(dev))
    metrics["method"] = "dense"
    write_json(metrics, out_metrics)
    log(f"done: test_acc={res['test_acc']:.4f} train_acc={res['train_acc']:.4f}")
    return metrics


def train_ticket(*, data: DataSpec, arch: str, recipe: dict, seed: int, sparsity: float,
                 device: str, mask_path, start_path, out_model, out_metrics,
                 method: str = "oneshot", start: str = "rewind", rewind_epoch: int | None = 0,
                 rewind_step: int | None = None, imp_round: int | None = None,
                 threads: int | None = None, recipe_key: str = "training",
                 runtime: dict | None = None, num_workers: int | None = None) -> dict:
    """Steps 4-5 of Algorithm 1 for any pruning method: the method's start state (the
    rewind state, w0, or fresh random weights), the mask applied, masked retraining."""
    from .devices import claim_device
    from .pruning.jobs import ticket_start

    rec = _recipe(recipe, recipe_key, num_workers)
    _setup(threads, seed)
    with output_lock(Path(out_model).parent), \
            claim_device(device, slots=(runtime or {}).get("gpu_slots")) as claim:
        dev = torch.device(claim.device)
        train_set, test_set = member_and_test_sets(data, rec, dev)
        n_steps = steps_per_epoch(len(train_set), rec.batch_size)
        rewind = rewind_step_of(rewind_epoch, rewind_step, n_steps, rec.epochs, recipe_key)
        model, spec, mask, start_step = ticket_start(start, start_path, mask_path,
                                                     rewind_step=rewind, seed=seed)
        log(f"{method} ticket {arch} on {data.dataset} at sparsity {sparsity} (mask: "
            f"{mask.sparsity():.4f} of prunable weights), starting from the {start} state at "
            f"step {start_step} ({start_step / n_steps:g} epochs), device {dev}")
        resume = Path(out_model).with_name("resume.pt")
        res = run_training(model, train_set, test_set, rec, seed=seed, device=dev, mask=mask,
                           start_step=start_step, resume_path=resume,
                           resume_key=f"ticket:{method}:{arch}:{sparsity}:{_data_key(data)}",
                           runtime=make_runtime(dev, runtime))
        model = model.cpu()
        measured = model_sparsity(model, mask.prune_fc)
        for name, t in mask.tensors.items():
            p = dict(model.named_parameters())[name]
            if torch.any(p.detach()[t == 0] != 0):
                raise AssertionError(f"pruned weights of {name} are not zero after retraining")
        save_checkpoint(out_model, model, spec, epoch=rec.epochs, step=rec.epochs * n_steps,
                        sparsity=sparsity,
                        identity=network_identity(data, arch, seed, method, sparsity, imp_round,
                                                  mask_digest(mask.to("cpu"))))
    metrics = _metrics(arch, data, sparsity, rec, seed, rewind, n_steps, res, str(dev))
    metrics.update(method=method, start=start, start_step=start_step, imp_round=imp_round)
    metrics["mask"] = mask.report(model)
    metrics["measured_sparsity_prunable"] = measured["sparsity_prunable"]
    write_json(metrics, out_metrics)
    log(f"done: test_acc={res['test_acc']:.4f} train_acc={res['train_acc']:.4f} "
        f"sparsity={measured['sparsity_prunable']:.4f}")
    return metrics


def _metrics(arch, data: DataSpec, sparsity, rec: Recipe, seed, rewind_step, n_steps, res,
             device):
    return {
        "dataset": data.dataset, "arch": arch, "sparsity": sparsity, "seed": seed,
        "rewind_step": rewind_step, "rewind_epoch": rewind_step / n_steps,
        "steps_per_epoch": n_steps, "device": device, "recipe": asdict(rec),
        "train_acc": res["train_acc"], "train_loss": res["train_loss"],
        "test_acc": res["test_acc"], "test_loss": res["test_loss"],
        "generalization_gap": res["train_acc"] - res["test_acc"],
        "train_seconds": res["train_seconds"], "history": res["history"],
    }
