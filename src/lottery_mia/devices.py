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

Several jobs per GPU: with ``gpu_slots: K`` (config key ``runtime.gpu_slots``,
or ``$LOTTERY_MIA_GPU_SLOTS``) each device has K slots, one lock file each
(``gpu-<i>.lock`` is slot 0, ``gpu-<i>.slot<k>.lock`` slot k); a job holds one
slot. Slots are filled device by device first (every device's slot 0, then
every slot 1, ...), so jobs spread over the GPUs before they share one. Run
with ``--resources gpu=<devices x K>``: Snakemake then counts slots.

A job that trains on several GPUs (a recipe's ``gpus: N``, DistributedDataParallel) claims
N slots on N different devices at once (``count=N``), or none: a job never holds part of
what it needs while waiting for the rest, so two such jobs cannot block each other. Give
its rule ``resources: gpu=N``.

``CUDA_VISIBLE_DEVICES`` is taken as an assignment (the job uses ``cuda:0``
and takes no lock) only under a scheduler (``SLURM_JOB_ID``, ``PBS_JOBID`` or
``LSB_JOBID`` set). A machine that exports ``CUDA_VISIBLE_DEVICES=0`` for every
process (a one-GPU cloud machine) is not an assignment either: jobs there share
the device through its slot locks, as ``runtime.gpu_slots`` asks. A workstation that
exports ``CUDA_VISIBLE_DEVICES=0,1,2,3`` for everything is not an assignment:
jobs claim among the visible devices with the locks, and the lock files are
named after the physical ids listed there, so jobs with different lists that
overlap still never share a device.

The lock directory (``/tmp/lottery-mia-gpu-locks-<uid>`` by default) is
created private (mode 0700) and must be owned by the user, not be a symlink
and not be writable by others, nor be reached through a symlinked folder or one
that others can write to without the sticky bit; otherwise it is refused. Lock
files are opened with ``O_NOFOLLOW`` and used only when they are regular files
of ours with one link holding a lock line (:mod:`lottery_mia.locks`), so a
planted symlink or hard link is never followed, truncated or written.

``torch`` is imported lazily, only when real CUDA detection is needed, so the
Snakemake process and CPU-only tests never pay for it.
"""

from __future__ import annotations

import fcntl
import os
import re
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

__all__ = ["DeviceClaim", "claim_device", "gpus_seen_without_torch", "device_without_gpu"]

SIMULATED_GPUS_ENV = "LOTTERY_MIA_SIMULATED_GPUS"
LOCK_DIR_ENV = "LOTTERY_MIA_GPU_LOCK_DIR"
SLOTS_ENV = "LOTTERY_MIA_GPU_SLOTS"
# Set by batch schedulers that give each job its own CUDA_VISIBLE_DEVICES.
SCHEDULER_ENVS = ("SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID")


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
    more: list = field(default_factory=list, repr=False, compare=False)
    """The further devices of a multi-GPU claim (``count`` > 1), one claim each."""

    @property
    def devices(self) -> list[str]:
        """Every device of the claim, the first one first (rank r runs on ``devices[r]``)."""
        return [self.device] + [c.device for c in self.more]

    @property
    def indices(self) -> list[int | None]:
        return [self.index] + [c.index for c in self.more]

    def release(self) -> None:
        """Give the device(s) back. Safe to call more than once.

        A forked child shares the parent's lock (same open file description);
        there ``release`` only closes its own descriptor, it never unlocks the
        parent's claim.
        """
        more, self.more = self.more, []
        for claim in more:
            claim.release()
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


def _lock_dir_error(directory: Path, problem: str) -> PermissionError:
    return PermissionError(
        f"GPU lock directory {directory} {problem}; it must be a directory owned by you "
        f"(uid {os.getuid()}) and private (mode 0700). Remove it (or fix its owner and mode), "
        f"or point ${LOCK_DIR_ENV} at a private directory of your own."
    )


def _check_lock_dir_parents(directory: Path) -> None:
    """Every folder above ``directory`` must be safe to reach it through: not a symbolic
    link (except the system's own links at the top level, such as macOS's /tmp ->
    /private/tmp) and not writable by others without the sticky bit (/tmp has it), where
    another user could swap the lock folder for their own."""
    for parent in Path(os.path.abspath(directory)).parents:
        try:
            st = os.lstat(parent)
        except FileNotFoundError:
            continue
        system_link = parent.parent == Path("/") and st.st_uid == 0
        if stat.S_ISLNK(st.st_mode) and not system_link:
            raise _lock_dir_error(directory, f"is reached through {parent}, a symbolic link "
                                  f"(to {os.readlink(parent)}); use the real path")
        if (stat.S_ISDIR(st.st_mode) and st.st_mode & 0o002
                and not st.st_mode & stat.S_ISVTX):
            raise _lock_dir_error(directory, f"is reached through {parent}, which anyone can "
                                  f"write to (mode {st.st_mode & 0o7777:o}, no sticky bit)")


def _prepare_lock_dir(directory: Path) -> Path:
    """Create ``directory`` private (0700), or check an existing one is safe to use."""
    _check_lock_dir_parents(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(directory)
    if stat.S_ISLNK(st.st_mode):
        raise _lock_dir_error(directory, "is a symbolic link")
    if not stat.S_ISDIR(st.st_mode):
        raise _lock_dir_error(directory, "is not a directory")
    if st.st_uid != os.getuid():
        raise _lock_dir_error(directory, f"is owned by uid {st.st_uid}, not by you")
    if st.st_mode & 0o022:
        raise _lock_dir_error(directory, f"is writable by others (mode {st.st_mode & 0o777:o})")
    return directory


def _try_lock(path: Path) -> int | None:
    """Lock ``path`` without blocking; the open descriptor, or ``None`` if busy.

    The file is opened without following symlinks and must be a regular file of ours with
    a single link holding nothing but a lock line (:mod:`lottery_mia.locks`)."""
    from .locks import claim_lock_file, open_lock_file

    fd = open_lock_file(path, "GPU lock file", mode=0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        claim_lock_file(fd, path, "GPU lock file")
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _slots(slots: int | None) -> int:
    """Jobs per device: ``slots``, else ``$LOTTERY_MIA_GPU_SLOTS``, else 1."""
    if slots is None:
        raw = os.environ.get(SLOTS_ENV, "").strip()
        if not raw:
            return 1
        try:
            slots = int(raw)
        except ValueError:
            raise ValueError(f"{SLOTS_ENV}={raw!r} is not an integer") from None
    slots = int(slots)
    if slots < 1:
        raise ValueError(f"GPU slots per device (config key runtime.gpu_slots) must be >= 1, "
                         f"got {slots}")
    return slots


def _lock_name(device_id: str, slot: int) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", device_id)
    return f"gpu-{safe}.lock" if slot == 0 else f"gpu-{safe}.slot{slot}.lock"


def claim_device(
    requested: str = "auto",
    *,
    lock_dir: str | Path | None = None,
    visible_count: int | None = None,
    timeout_s: float = 24 * 3600,
    poll_s: float = 2.0,
    log: Callable[[str], object] = print,
    slots: int | None = None,
    count: int = 1,
) -> DeviceClaim:
    """Claim the device this job runs on (the config key ``device``).

    ``requested`` is ``"cpu"`` (claims nothing), ``"cuda"`` (a GPU or an
    error), ``"auto"`` (a GPU if there is one, else the CPU) or ``"cuda:N"``
    (exactly device N, not locked: the caller has chosen).

    For ``"cuda"``/``"auto"`` with GPUs: if ``CUDA_VISIBLE_DEVICES`` names one
    device, or names any under a scheduler (``SLURM_JOB_ID``, ``PBS_JOBID``,
    ``LSB_JOBID``), it is the job's assignment and ``cuda:0`` is used without a
    lock. Otherwise the first free slot lock in ``lock_dir`` (else
    ``$LOTTERY_MIA_GPU_LOCK_DIR``, else ``/tmp/lottery-mia-gpu-locks-<uid>``) is
    locked, waiting up to ``timeout_s`` (polling every ``poll_s``) while all
    are busy. ``slots`` (else ``$LOTTERY_MIA_GPU_SLOTS``, else 1) is the number
    of jobs a device takes at once.

    The number of GPUs is ``visible_count``, else ``$LOTTERY_MIA_SIMULATED_GPUS``,
    else ``torch.cuda.device_count()``; the first two simulate GPUs (for tests)
    and skip torch altogether.

    ``count`` (a recipe's ``gpus``) is the number of devices the job needs: N
    slots on N different devices, all or none (:attr:`DeviceClaim.devices`); a
    scheduler's assignment must list at least N devices (``cuda:0`` to
    ``cuda:N-1`` are used). On the CPU the claim is ``count`` times ``cpu``.
    With ``count`` > 1 no device is made current in this process (each rank
    selects its own).
    """
    requested = requested.strip().lower()
    count_wanted = int(count)
    if count_wanted < 1:
        raise ValueError(f"a job needs at least one device (gpus >= 1), got {count_wanted}")
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

    def cpu() -> DeviceClaim:
        return DeviceClaim("cpu", more=[DeviceClaim("cpu") for _ in range(count_wanted - 1)])

    if requested == "cpu":
        return cpu()
    if requested.startswith("cuda:"):
        if count_wanted > 1:
            raise ValueError(f"config key `device`: {requested!r} names one device, but the "
                             f"job trains on gpus={count_wanted}; use device cuda or auto")
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
        return cpu()
    if count_wanted > count:
        raise RuntimeError(f"the job trains on gpus={count_wanted} but only {count} CUDA "
                           "device(s) are visible; lower the recipe's gpus")

    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    listed = [v.strip() for v in visible.split(",") if v.strip()]
    scheduler = next((k for k in SCHEDULER_ENVS if os.environ.get(k, "").strip()), None)
    if listed and scheduler:
        why = f"set by the scheduler ({scheduler})"
        if count_wanted > len(listed):
            raise RuntimeError(f"CUDA_VISIBLE_DEVICES={visible} {why}, but the job trains on "
                               f"gpus={count_wanted}; give it {count_wanted} devices")
        if count_wanted == 1:
            select(0)
        used = ", ".join(f"cuda:{i}" for i in range(count_wanted))
        log(f"[lottery-mia] CUDA_VISIBLE_DEVICES={visible} {why}; using {used} (no lock "
            "taken)")
        return DeviceClaim("cuda:0", 0, more=[DeviceClaim(f"cuda:{i}", i)
                                              for i in range(1, count_wanted)])
    # Lock names follow the physical ids when CUDA_VISIBLE_DEVICES lists several.
    ids = listed[:count] if len(listed) >= count else [str(i) for i in range(count)]
    n_slots = _slots(slots)

    directory = _prepare_lock_dir(
        Path(lock_dir or os.environ.get(LOCK_DIR_ENV) or _default_lock_dir()))
    deadline = time.monotonic() + timeout_s
    waiting = False
    while True:
        got: list[DeviceClaim] = []
        slot_of: list[int] = []
        for slot in range(n_slots):  # every device's first slot before any second one
            for index in range(count):
                if len(got) == count_wanted:
                    break
                if any(c.index == index for c in got):
                    continue  # N different devices
                path = directory / _lock_name(ids[index], slot)
                fd = _try_lock(path)
                if fd is None:
                    continue
                got.append(DeviceClaim(f"cuda:{index}", index, path, fd, os.getpid()))
                slot_of.append(slot)
        if len(got) == count_wanted:
            claim = got[0]
            claim.more = got[1:]
            try:
                if count_wanted == 1:
                    select(claim.index)
            except BaseException:
                claim.release()
                raise
            for c, slot in zip(got, slot_of):
                log(f"[lottery-mia] claimed cuda:{c.index} slot {slot + 1}/{n_slots} "
                    f"(lock {c.lock_path}, pid {os.getpid()})")
            return claim
        for c in got:  # all or none: never hold part of a claim while waiting
            c.release()
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"no free GPU after {timeout_s:g}s: all {count} device(s) x {n_slots} "
                f"slot(s) locks in "
                f"{directory} are held by other jobs"
                + (f" (this job needs {count_wanted} different devices at once)"
                   if count_wanted > 1 else "")
                + ". Is `--resources gpu=` larger "
                "than GPUs x slots (runtime.gpu_slots) on this node?"
            )
        if not waiting:
            waiting = True
            log(
                f"[lottery-mia] all {count} GPU(s) busy (locks in {directory}); "
                f"waiting up to {timeout_s:g}s for "
                + (f"{count_wanted} to be free at once" if count_wanted > 1
                   else "one to be released")
            )
        time.sleep(max(0.0, min(poll_s, deadline - time.monotonic())))


# --------------------------------------------------------------------------- at DAG time
def gpus_seen_without_torch() -> int | None:
    """How many GPUs this machine shows, found without importing torch (the DAG build must
    not): the simulated count of the tests, 0 when ``CUDA_VISIBLE_DEVICES`` hides every
    device, the NVIDIA driver's ``/proc`` entries, else ``nvidia-smi -L``; ``None`` when it
    cannot tell (a ROCm machine: ``/dev/kfd``)."""
    import glob
    import shutil
    import subprocess

    simulated = os.environ.get(SIMULATED_GPUS_ENV, "").strip()
    if simulated.isdigit():
        return int(simulated)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return 0
    found = glob.glob("/proc/driver/nvidia/gpus/*")
    if found:
        return len(found)
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True,
                                 timeout=10).stdout
            return sum(line.startswith("GPU ") for line in out.splitlines())
        except (OSError, subprocess.SubprocessError):
            return None
    if os.path.exists("/dev/kfd"):
        return None
    return 0


def device_without_gpu(device: str) -> str | None:
    """What is wrong with config key ``device`` on this machine, or ``None``: ``cuda`` or
    ``cuda:N`` where no GPU (or fewer than N + 1) is visible."""
    if not device.startswith("cuda"):
        return None
    seen = gpus_seen_without_torch()
    if seen is None:
        return None
    need = int(device.split(":")[1]) + 1 if ":" in device else 1
    if seen >= need:
        return None
    return (f"config key 'device': {device!r}, but this machine shows "
            f"{'no GPU' if seen == 0 else f'{seen} GPU(s)'} (no NVIDIA driver entries, "
            "no nvidia-smi, or CUDA_VISIBLE_DEVICES hides them): training jobs run here "
            "would fail; set 'device: cpu' (or 'auto'), or run the jobs on GPU nodes")
