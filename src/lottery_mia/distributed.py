"""One training job on several processes: PyTorch DistributedDataParallel on one node.

A training job whose recipe has ``gpus: N`` (N > 1) runs N ranks, started by
:func:`spawn_ranks` (``torch.multiprocessing`` with the ``spawn`` method) inside the job:
NCCL on CUDA (rank r on the r-th device the job claimed), gloo on the CPU. The job's
process keeps its output lock and its GPU claim while the ranks run, forwards their log
lines to its own log, and the ranks die with it (``PR_SET_PDEATHSIG``), so a killed job
leaves no rank behind to write into a folder a rerun owns.

What makes N ranks train as one process would (the recipe is "what", ``gpus`` is "how"):

- the same global batch and the same seeded sample order and augmentation, each rank taking
  an equal part of every global batch (:func:`lottery_mia.data.batch_part`); DDP averages
  the gradients of the parts, which is the gradient of the whole batch;
- BatchNorm over the global batch (:class:`GlobalBatchNorm2d`): the statistics of every
  BatchNorm layer are summed over the ranks (autograd-aware all-reduce, so the backward
  pass is the global batch's too). Ordinary per-rank BatchNorm would normalise each rank's
  part by its own statistics: a different network function, and results that depend on N.
  torch's ``SyncBatchNorm`` does the same as this class but refuses CPU tensors, which the
  tests (gloo) need; this one runs on both;
- the same starting weights (the seeded w0; DDP also broadcasts rank 0's), the same
  optimizer on the same averaged gradients, and the mask applied on every rank after every
  step, so all ranks hold the same weights; :func:`check_ranks_agree` checks at the end that
  they do, bit for bit, and that every pruned weight is zero on every rank.

The ranks agree with a single process up to the order of floating-point reductions (the
sums of the all-reduces, and BatchNorm's statistics computed in two passes over the ranks).
Only rank 0 writes outputs (checkpoints, resume states, metrics) and logs.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

__all__ = ["Ranks", "spawn_ranks", "RankFailed", "GlobalBatchNorm2d", "use_global_batchnorm",
           "broadcast_from_rank0", "all_reduce_sum_", "check_ranks_agree", "world_size"]


@dataclass(frozen=True)
class Ranks:
    """This process's place in a distributed job: rank r of ``world`` ranks."""

    rank: int
    world: int

    @property
    def shard(self) -> tuple[int, int]:
        return (self.rank, self.world)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def world_size() -> int:
    """Ranks of the process group (1 without one)."""
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


# --------------------------------------------------------------------------- collectives
def broadcast_from_rank0(tensors: list) -> list:
    """Rank 0's values of ``tensors`` (``None`` entries pass through) on every rank. Bool
    tensors travel as uint8 (gloo has no bool)."""
    import torch.distributed as dist

    out = []
    for t in tensors:
        if t is None:
            out.append(None)
            continue
        buf = t.to(torch.uint8) if t.dtype == torch.bool else t.contiguous()
        dist.broadcast(buf, src=0)
        out.append(buf.to(torch.bool) if t.dtype == torch.bool else buf)
    return out


def all_reduce_sum_(*tensors) -> None:
    """Sum each tensor over the ranks, in place."""
    import torch.distributed as dist

    for t in tensors:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)


# --------------------------------------------------------------------------- BatchNorm
class _SumOverRanks(torch.autograd.Function):
    """All-reduce (sum) whose backward is the all-reduce of the gradients: every rank's
    loss depends on every rank's input through the sum."""

    @staticmethod
    def forward(ctx, t):
        import torch.distributed as dist

        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    @staticmethod
    def backward(ctx, grad):
        import torch.distributed as dist

        grad = grad.clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training-mode statistics are those of the global batch (every
    rank's part), on CPU (gloo) and CUDA (NCCL) alike; the same parameters and buffers as
    BatchNorm2d (state dicts are interchangeable), and plain BatchNorm outside a
    distributed run or in eval mode.

    Mean first (one all-reduce of the per-channel sums and the count), then the variance
    from the centred values (a second all-reduce): the two-pass computation keeps the
    precision of a single process's BatchNorm. The all-reduces are autograd-aware, so the
    backward pass carries the gradient of every rank's loss through the shared statistics
    (as torch's SyncBatchNorm does). Running statistics are updated as BatchNorm does
    (unbiased variance), identically on every rank.
    """

    def forward(self, x):
        if not self.training or world_size() == 1:
            return super().forward(x)
        all_reduce = _SumOverRanks.apply
        self._check_input_dim(x)
        xf = x.float()
        c = xf.shape[1]
        count = torch.full((1,), float(xf.numel() // c), dtype=torch.float32, device=x.device)
        total = all_reduce(torch.cat([xf.sum(dim=(0, 2, 3)), count]))
        n = total[c]
        mean = total[:c] / n
        centred = xf - mean.view(1, c, 1, 1)
        var = all_reduce((centred * centred).sum(dim=(0, 2, 3))) / n
        y = centred * torch.rsqrt(var + self.eps).view(1, c, 1, 1)
        if self.affine:
            y = y * self.weight.view(1, c, 1, 1) + self.bias.view(1, c, 1, 1)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                f = (self.momentum if self.momentum is not None
                     else 1.0 / self.num_batches_tracked.float())
                self.running_mean.mul_(1 - f).add_(mean.detach() * f)
                self.running_var.mul_(1 - f).add_(var.detach() * (n / (n - 1)) * f)
        return y.to(x.dtype)


def use_global_batchnorm(model: nn.Module, on: bool = True, *, nccl: bool = False
                         ) -> nn.Module:
    """Turn every BatchNorm2d of ``model`` into a batch norm over the global batch in place
    (or back, with ``on=False``): same parameters and buffers, only the training forward
    differs. Under NCCL (CUDA) PyTorch's ``nn.SyncBatchNorm`` (one fused all-gather per
    layer); under gloo (CPU, where SyncBatchNorm does not run) :class:`GlobalBatchNorm2d`,
    equal in value."""
    for m in model.modules():
        if on and type(m) is nn.BatchNorm2d:
            if nccl:
                m.__class__ = nn.SyncBatchNorm
                m.process_group = None  # the default group: every rank of the job
            else:
                m.__class__ = GlobalBatchNorm2d
        elif not on and type(m) in (GlobalBatchNorm2d, nn.SyncBatchNorm):
            m.__class__ = nn.BatchNorm2d
            m.__dict__.pop("process_group", None)
    return model


# --------------------------------------------------------------------------- checks
def check_ranks_agree(model: nn.Module, mask=None) -> dict:
    """All ranks hold the same weights and buffers (bit for bit) and every weight the mask
    prunes is zero on every rank; raises otherwise. Returns what it checked."""
    import hashlib

    import torch.distributed as dist

    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes()
                 if v.numel() else b"")
    dev = next(model.parameters()).device
    mine = torch.tensor(list(h.digest()[:16]), dtype=torch.int64, device=dev)
    gathered = [torch.empty_like(mine) for _ in range(world_size())]
    dist.all_gather(gathered, mine)
    pruned_nonzero = torch.zeros((), dtype=torch.int64, device=dev)
    if mask is not None:
        params = dict(model.named_parameters())
        for name, t in mask.tensors.items():
            pruned_nonzero += (params[name].detach()[t.to(dev) == 0] != 0).sum()
    all_reduce_sum_(pruned_nonzero)
    same = all(torch.equal(g, gathered[0]) for g in gathered)
    if not same:
        raise AssertionError("the ranks of a distributed training job ended with different "
                             "weights; their results cannot be trusted")
    if int(pruned_nonzero):
        raise AssertionError(f"{int(pruned_nonzero)} pruned weights are not zero on some "
                             "rank after distributed training")
    return {"ranks": world_size(), "ranks_identical": True, "pruned_nonzero_any_rank": 0}


# --------------------------------------------------------------------------- processes
class _QueueWriter:
    """A rank's stdout/stderr: whole lines go to the job's process, which prints them."""

    def __init__(self, queue, prefix: str = ""):
        self.queue, self.prefix, self.buf = queue, prefix, ""

    def write(self, s: str) -> int:
        self.buf += s
        while "\n" in self.buf:
            line, self.buf = self.buf.split("\n", 1)
            self.queue.put(("log", self.prefix + line + "\n"))
        return len(s)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def _die_with_parent(parent: int) -> None:
    """A rank must not outlive the job that started it (it would keep writing into an
    output folder whose lock died with the job)."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(Exception):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


GROUP_TIMEOUT_S = 1800  # the rendezvous and any collective (a rank writing a resume state)


def _rank_main(rank: int, fn, world: int, init_file: str, backend: str, devices: list,
               queue, parent: int, args: tuple) -> None:
    """A rank's process: log forwarding, the process group, then ``fn(ranks, device,
    *args)``; rank 0's return value goes back to the job's process."""
    _die_with_parent(parent)
    sys.stdout = _QueueWriter(queue) if rank == 0 else open(os.devnull, "w")
    sys.stderr = _QueueWriter(queue, "" if rank == 0 else f"[rank {rank}] ")
    import torch.distributed as dist

    device = torch.device(devices[rank])
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if backend == "gloo":
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # one node: loopback
    # a rank that never arrives (or a hung NCCL start) fails the job instead of waiting on
    # it without end
    import datetime

    dist.init_process_group(backend, init_method=f"file://{init_file}", rank=rank,
                            world_size=world, timeout=datetime.timedelta(seconds=GROUP_TIMEOUT_S))
    try:
        result = fn(Ranks(rank, world), device, *args)
        if rank == 0:  # plain pickle bytes: tensors copied, not shared with an exiting process
            queue.put(("result", pickle.dumps(result)))
        dist.barrier()
    except BaseException:
        queue.put(("error", (rank, traceback.format_exc())))
        raise
    finally:
        sys.stdout.flush()
        dist.destroy_process_group()


def _hide_main():
    """``multiprocessing``'s spawn re-imports the parent's ``__main__`` script in every
    child unless it has no file; a Snakemake script (no ``__main__`` guard) would run the
    whole job again in each rank. The ranks need nothing from it, so it is hidden while they
    start."""
    main = sys.modules.get("__main__")
    saved = {k: getattr(main, k) for k in ("__file__", "__spec__") if hasattr(main, k)}

    @contextlib.contextmanager
    def ctx():
        try:
            for k in saved:
                if k == "__file__":
                    delattr(main, k)
                else:
                    setattr(main, k, None)
            yield
        finally:
            for k, v in saved.items():
                setattr(main, k, v)

    return ctx()


class RankFailed(RuntimeError):
    """A rank of a distributed job failed (the message starts with the first failure)."""


def _rank_failure(procs, errors: list) -> RankFailed | None:
    """The failure of a distributed job, root cause first: a rank killed by a signal, else
    the first rank to report an error (the others then fail on the lost connection)."""
    killed = [(i, p.exitcode) for i, p in enumerate(procs.processes)
              if p.exitcode is not None and p.exitcode < 0
              and signal.Signals(-p.exitcode) != signal.SIGTERM]
    parts = [f"rank {i} was killed by signal {signal.Signals(-code).name}"
             for i, code in killed]
    parts += [f"rank {rank} failed:\n{tb}" for rank, tb in errors]
    if not parts:
        return None
    return RankFailed("a rank of the distributed training job failed; " + "\n".join(parts))


def spawn_ranks(fn: Callable, world: int, devices: list, args: tuple = (), *,
                out: Callable[[str], object] | None = None):
    """Run ``fn(ranks, device, *args)`` on ``world`` processes (rank r on ``devices[r]``),
    NCCL on CUDA and gloo on the CPU, and return rank 0's result. ``fn`` must be a
    module-level function (it is pickled by name). The ranks' log lines are written to this
    process's stdout as they come (``out``: another writer); an error in any rank stops
    them all and is raised here with that rank's traceback."""
    import torch.multiprocessing as tmp

    if len(devices) != world:
        raise ValueError(f"{world} ranks need {world} devices, got {devices}")
    backend = "nccl" if torch.device(devices[0]).type == "cuda" else "gloo"
    write = out or (lambda s: (sys.stdout.write(s), sys.stdout.flush()))
    folder = tempfile.mkdtemp(prefix="lottery-mia-ranks-")
    init_file = str(Path(folder) / "rendezvous")
    ctx = tmp.get_context("spawn")
    queue = ctx.SimpleQueue()
    result = None

    errors: list[tuple[int, str]] = []  # (rank, traceback), in the order they came

    def drain() -> None:
        nonlocal result
        while not queue.empty():
            kind, value = queue.get()
            if kind == "log":
                write(value)
            elif kind == "error":
                errors.append(value)
            else:
                result = pickle.loads(value)  # rank 0's result, from our own child

    try:
        with _hide_main():
            procs = tmp.start_processes(
                _rank_main, args=(fn, world, init_file, backend, [str(d) for d in devices],
                                  queue, os.getpid(), args),
                nprocs=world, join=False, daemon=False, start_method="spawn")
        try:
            while not procs.join(timeout=0.2):
                drain()
        except Exception as err:
            drain()
            raise _rank_failure(procs, errors) or err from None
        finally:
            drain()
    finally:
        with contextlib.suppress(OSError):
            for p in Path(folder).iterdir():
                p.unlink()
            os.rmdir(folder)
    return result
