"""Small file helpers shared by every stage: JSON, atomic writes, log lines."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path


def write_json(obj, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n"
    # a temporary name unique to this process: two writers never share one
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                               dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: str | Path):
    return json.loads(Path(path).read_text())


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
