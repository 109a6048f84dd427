"""Lock files that never touch a file that is not theirs.

Two kinds of lock use this module: the lock a training job holds on its output folder
(:func:`output_lock`, a ``.lock`` file in the folder) and the per-GPU slot locks of
:mod:`lottery_mia.devices`. Both are ``flock`` locks on a small file holding the holder's
pid. A lock file is opened without following a symbolic link (``O_NOFOLLOW``) and is used
only when it is a regular file of ours with a single link; a file of any other kind, or one
whose contents are not a lock line of ours, is refused with an error naming it, and never
truncated or written. So a ``.lock`` planted as a symlink or a hard link to a user's file
cannot make a job overwrite that file.

An output lock is removed when its job ends (a finished run leaves no ``.lock`` files in
``results/``). A job that takes the lock checks afterwards that the path still names the
file it locked, so a lock removed by its previous holder in between is never shared.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import socket
import stat
from pathlib import Path

from .io import log

__all__ = ["LockFileError", "OutputLockedError", "open_lock_file", "claim_lock_file",
           "output_lock"]

LOCK_LINE = re.compile(r"\A(pid \d+( on \S*)?)?\s*\Z")


class LockFileError(PermissionError):
    """A lock path names something that is not a lock file of ours."""


class OutputLockedError(RuntimeError):
    """Another process is writing the same output folder."""


def open_lock_file(path: Path, what: str, mode: int = 0o666) -> int:
    """Open (creating it if need be) the lock file ``path``; its descriptor.

    Refused with :class:`LockFileError` naming ``what`` and the path: a symbolic link
    (never followed), anything but a regular file, a file with other hard links, a file
    owned by someone else. A new file gets ``mode`` (less the umask)."""
    path = Path(path)
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        fd = os.open(path, flags, mode)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise LockFileError(f"{what} {path} is a symbolic link; refusing to follow it. "
                                "Remove it (and check who planted it), then rerun") from None
        if err.errno == errno.EISDIR:
            raise LockFileError(f"{what} {path} is not a regular file (a directory); "
                                "refusing to use it as a lock. Remove it, then rerun") from None
        raise
    st = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(st.st_mode):
        problem = "is not a regular file"
    elif st.st_nlink != 1:
        problem = (f"has {st.st_nlink} hard links (a lock file has one; another name points "
                   "at the same file)")
    elif st.st_uid != os.getuid():
        problem = f"is owned by uid {st.st_uid}, not by you (uid {os.getuid()})"
    if problem:
        os.close(fd)
        raise LockFileError(f"{what} {path} {problem}; refusing to use it as a lock. Remove "
                            "it (and check who put it there), then rerun")
    return fd


def _contents(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 4096).decode("utf-8", "replace")


def claim_lock_file(fd: int, path: Path, what: str) -> None:
    """Write this process's lock line into the locked file ``fd`` (``path``), after
    checking that what it holds is empty or a lock line (never overwrite anything else)."""
    text = _contents(fd)
    if not LOCK_LINE.match(text):
        raise LockFileError(f"{what} {path} holds something other than a lock line "
                            f"({text[:60]!r}...); refusing to overwrite it. Move it away, "
                            "then rerun")
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())


def _same_file(fd: int, path: Path) -> bool:
    try:
        lst = os.lstat(path)
    except FileNotFoundError:
        return False
    st = os.fstat(fd)
    return (lst.st_ino, lst.st_dev) == (st.st_ino, st.st_dev)


@contextlib.contextmanager
def output_lock(folder):
    """Hold an exclusive lock on ``folder`` (a ``.lock`` file in it) for the block.

    A second process asking for the same folder fails at once, naming the folder and the
    process that holds it, instead of training over the same resume state. The lock file is
    removed when the block ends. Temporary files left in the folder by a killed writer are
    removed once the lock is held."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock_path = folder / ".lock"
    for _ in range(10):
        fd = open_lock_file(lock_path, "output lock")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = _contents(fd).strip() or "another process"
            os.close(fd)
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise OutputLockedError(
                f"output folder {folder} is locked by {holder}, which is still writing it "
                "(a job left running after Snakemake was killed?); wait for it to finish or "
                "stop that process, then rerun") from None
        if _same_file(fd, lock_path):
            break
        os.close(fd)  # its holder removed it while we opened it: take the new one
    else:  # pragma: no cover - ten lost races in a row
        raise OutputLockedError(f"output folder {folder}: could not take its lock")
    claimed = False
    try:
        claim_lock_file(fd, lock_path, "output lock")
        claimed = True
        for stale in folder.glob(".*.tmp"):  # left by a killed writer; the folder is ours now
            log(f"removing {stale}, a temporary file left by a killed job")
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        yield lock_path
    finally:
        try:
            if claimed and _same_file(fd, lock_path):
                with contextlib.suppress(FileNotFoundError):
                    lock_path.unlink()  # still held: nobody can have taken it meanwhile
        finally:
            os.close(fd)  # releases the lock
