"""Small file helpers shared by every stage: JSON, CSV, atomic writes, log lines.

Every file the pipeline writes goes through a temporary name and a rename (a killed job
never leaves a half-written file under the final name) and gets the permissions the
user's umask gives a new file (a group can read a shared results folder). A write that
fails (a full disk, a file-size limit) names the file it was writing. Every file it reads
back fails with a message naming the file and what to do.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

_UMASK: int | None = None


def umask() -> int:
    """The process's umask (read once: setting it is the only way to read it)."""
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0o022)
        os.umask(_UMASK)
    return _UMASK


def publish(tmp, path) -> None:
    """Give the finished temporary file ``tmp`` the mode a new file gets under the umask
    (``mkstemp`` makes it 0600) and rename it to ``path``."""
    os.chmod(tmp, 0o666 & ~umask())
    os.replace(tmp, path)


@contextlib.contextmanager
def writing(path):
    """Name ``path`` in any OS error raised while writing it (a full disk says
    "File too large" or "No space left on device" without saying where)."""
    try:
        yield
    except OSError as err:
        if str(path) in str(err):
            raise
        raise OSError(err.errno, f"cannot write {path}: {err.strerror or err}; free space on "
                                 "its disk (or raise the file-size limit) and rerun") from None


def atomic_write_bytes(data: bytes, path, *, sync: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file unique to this process."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with writing(path):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                                   dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                if sync:
                    fh.flush()
                    os.fsync(fh.fileno())
            publish(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


@contextlib.contextmanager
def atomic_path(path):
    """A temporary path beside ``path`` for a writer that takes a file name (pandas,
    pyarrow); renamed to ``path`` when the block ends, removed if it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with writing(path):
            yield tmp
            publish(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_csv(frame, output) -> None:
    """A table as CSV, through a temporary name."""
    with atomic_path(output) as tmp:
        frame.to_csv(tmp, index=False)
    log(f"wrote {output} ({len(frame)} rows)")


def write_json(obj, path: str | Path) -> None:
    text = json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n"
    atomic_write_bytes(text.encode(), path)


def read_json(path: str | Path, remedy: str = "delete it and rerun the rule that writes it"):
    """A JSON file; a missing, unreadable or corrupt one is a ValueError naming it."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ValueError(f"{path} does not exist; rerun the rule that writes it") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise ValueError(f"{path} is not a readable JSON file ({type(err).__name__}: "
                         f"{first}); {remedy}") from None


def _jsonable(o):
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def log(msg: str) -> None:
    """One timestamped progress line (scripts send stdout to the rule's log file)."""
    print(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {msg}", file=sys.stdout, flush=True)


def read_parquet_frame(path, what: str, remedy: str):
    """A Parquet table as a DataFrame; an unreadable file is a ValueError naming the file,
    what it should be and what to do."""
    import pandas as pd

    try:
        return pd.read_parquet(path)
    except Exception as err:  # noqa: BLE001 - every failure becomes one clear message
        raise ValueError(f"{path} is not a readable {what} ({err}); {remedy}") from None


def read_csv_table(path, what: str, required=(), remedy: str | None = None, **kw):
    """A CSV table the pipeline wrote (a summary) as a DataFrame; unreadable, or without
    one of the ``required`` columns, is a ValueError naming the file and the columns."""
    import pandas as pd

    remedy = remedy or "delete it and rerun the workflow to write it again"
    try:
        frame = pd.read_csv(path, **kw)
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame()
    except Exception as err:  # noqa: BLE001 - every failure becomes one clear message
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise ValueError(f"{path} is not a readable {what} ({first}); {remedy}") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} is not a {what} of this version: it lacks the column(s) "
                         f"{missing}; {remedy}")
    return frame
