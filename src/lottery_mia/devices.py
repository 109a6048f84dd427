"""Claiming a GPU for one job when Snakemake runs several jobs at once.

Why this module exists
----------------------
``snakemake --cores all --resources gpu=4`` makes Snakemake *count* GPUs: it
never starts more than four ``gpu=1`` jobs at a time. It does not tell a job
*which* device it got (no ``CUDA_VISIBLE_DEVICES``, no device id; an open
upstream feature request since 2020). Left alone, every job would pick
``cuda:0`` and four jobs would share one GPU while three sit idle.

So each GPU job claims a device by itself: one lock file per device,
``gpu-<i>.lock`` in a node-local directory, taken with
``flock(LOCK_EX | LOCK_NB)``. The first free device wins. The lock lives as
long as the open file descriptor, and the kernel drops it when the process
ends, however it ends (including SIGKILL or an out-of-memory kill), so a
crashed job never leaves a stale claim behind. Lock files are never deleted
(deleting a lock file while someone waits on it breaks ``flock``); the pid
written into one is for humans only and is not trusted by the code.

Under SLURM (and any scheduler that does the same) ``CUDA_VISIBLE_DEVICES``
is already set to the job's own allocation. Then the job uses ``cuda:0``, the
first device it can see, and takes no lock: the scheduler has done the
assignment.

``torch`` is imported lazily, only when real CUDA detection is needed, so the
Snakemake process and CPU-only tests never pay for it.
"""

from __future__ import annotations

import fcntl
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

__all__ = ["DeviceClaim", "claim_device"]

SIMULATED_GPUS_ENV = "LOTTERY_MIA_SIMULATED_GPUS"
LOCK_DIR_ENV = "LOTTERY_MIA_GPU_LOCK_DIR"


@dataclass
class DeviceClaim:
    """The device a job runs on, and the lock that keeps it its own.

    ``device`` is a torch device string (``"cpu"``, ``"cuda:1"``); ``index`` is
    the CUDA index in this process's numbering (``None`` on the CPU);
    ``lock_path`` is the lock file held (``None`` when nothing was locked: CPU,
    an explicit ``cuda:N``, or a scheduler-set ``CUDA_VISIBLE_DEVICES``).

    The claim is held until :meth:`release` (or the end of a ``with`` block)
    or until the process exits. Dropping the object does not release it.
    """

    device: str
    index: int | None = None
    lock_path: Path | None = None
    _fd: int | None = field(default=None, repr=False, compare=False)
    _owner_pid: int | None = field(default=None, repr=False, compare=False)

    def release(self) -> None:
        """Give the device back. Safe to call more than once.

        A forked child shares the parent's lock (same open file description);
        there ``release`` only closes its own descriptor, it never unlocks the
        parent's claim.
        """
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if os.getpid() == self._owner_pid:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> DeviceClaim:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _cuda_error() -> RuntimeError:
    return RuntimeError(
        "CUDA was requested via config key `device` but is not available "
        "on this machine; set `device: cpu` or `device: auto` in the config."
    )


def _explicit_count(visible_count: int | None) -> int | None:
    """The GPU count given by argument or ``LOTTERY_MIA_SIMULATED_GPUS``.

    An explicit count replaces CUDA detection entirely (no torch import, no
    ``torch.cuda.set_device``): it exists for tests on machines without GPUs.
    """
    if visible_count is None:
        raw = os.environ.get(SIMULATED_GPUS_ENV, "").strip()
        if not raw:
            return None
        try:
            visible_count = int(raw)
        except ValueError:
            raise ValueError(f"{SIMULATED_GPUS_ENV}={raw!r} is not an integer") from None
    if visible_count < 0:
        raise ValueError(f"GPU count must be >= 0, got {visible_count}")
    return visible_count


def _default_lock_dir() -> Path:
    # Deliberately /tmp and not $TMPDIR: batch systems often give each job its
    # own TMPDIR, and the locks must be shared by all jobs on the node.
    return Path("/tmp") / f"lottery-mia-gpu-locks-{os.getuid()}"


def _try_lock(path: Path) -> int | None:
    """Lock ``path`` without blocking; the open descriptor, or ``None`` if busy."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def claim_device(
    requested: str = "auto",
    *,
    lock_dir: str | Path | None = None,
    visible_count: int | None = None,
    timeout_s: float = 24 * 3600,
    poll_s: float = 2.0,
    log: Callable[[str], object] = print,
) -> DeviceClaim:
    """Claim the device this job runs on (the config key ``device``).

    ``requested`` is ``"cpu"`` (claims nothing), ``"cuda"`` (a GPU or an
    error), ``"auto"`` (a GPU if there is one, else the CPU) or ``"cuda:N"``
    (exactly device N, not locked: the caller has chosen).

    For ``"cuda"``/``"auto"`` with GPUs: if ``CUDA_VISIBLE_DEVICES`` is set and
    non-empty, the scheduler has assigned the devices and ``cuda:0`` is used
    without a lock. Otherwise the first free of the ``gpu-<i>.lock`` files in
    ``lock_dir`` (else ``$LOTTERY_MIA_GPU_LOCK_DIR``, else
    ``/tmp/lottery-mia-gpu-locks-<uid>``) is locked, waiting up to
    ``timeout_s`` (polling every ``poll_s``) while all are busy.

    The number of GPUs is ``visible_count``, else ``$LOTTERY_MIA_SIMULATED_GPUS``,
    else ``torch.cuda.device_count()``; the first two simulate GPUs (for tests)
    and skip torch altogether.
    """
    requested = requested.strip().lower()
    explicit = _explicit_count(visible_count)
    simulated = explicit is not None

    def gpu_count() -> int:
        if explicit is not None:
            return explicit
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0

    def select(index: int) -> None:
        if not simulated:
            import torch

            torch.cuda.set_device(index)

    if requested == "cpu":
        return DeviceClaim("cpu")
    if requested.startswith("cuda:"):
        try:
            index = int(requested.split(":", 1)[1])
        except ValueError:
            raise ValueError(f"invalid device {requested!r}") from None
        count = gpu_count()
        if count == 0:
            raise _cuda_error()
        if not 0 <= index < count:
            raise RuntimeError(
                f"device {requested!r} requested via config key `device`, "
                f"but only {count} CUDA device(s) are visible"
            )
        select(index)
        log(f"[lottery-mia] using {requested} as configured (no lock taken)")
        return DeviceClaim(requested, index)
    if requested not in ("cuda", "auto"):
        raise ValueError(
            f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {requested!r}"
        )

    count = gpu_count()
    if count == 0:
        if requested == "cuda":
            raise _cuda_error()
        return DeviceClaim("cpu")

    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if visible:
        select(0)
        log(
            f"[lottery-mia] CUDA_VISIBLE_DEVICES={visible} set by the scheduler; "
            "using cuda:0 (no lock taken)"
        )
        return DeviceClaim("cuda:0", 0)

    directory = Path(lock_dir or os.environ.get(LOCK_DIR_ENV) or _default_lock_dir())
    directory.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    waiting = False
    while True:
        for index in range(count):
            path = directory / f"gpu-{index}.lock"
            fd = _try_lock(path)
            if fd is not None:
                claim = DeviceClaim(f"cuda:{index}", index, path, fd, os.getpid())
                try:
                    select(index)
                except BaseException:
                    claim.release()
                    raise
                log(f"[lottery-mia] claimed cuda:{index} (lock {path}, pid {os.getpid()})")
                return claim
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"no free GPU after {timeout_s:g}s: all {count} device lock(s) in "
                f"{directory} are held by other jobs. Is `--resources gpu=` larger "
                "than the number of GPUs on this node?"
            )
        if not waiting:
            waiting = True
            log(
                f"[lottery-mia] all {count} GPU(s) busy (locks in {directory}); "
                f"waiting up to {timeout_s:g}s for one to be released"
            )
        time.sleep(max(0.0, min(poll_s, deadline - time.monotonic())))
