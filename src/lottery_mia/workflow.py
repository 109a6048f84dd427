"""What every Snakemake script of the workflow shares: sending its output to the rule's log.

Scripts call :func:`logged` first, so progress lines, warnings and a failing job's traceback
all land in the rule's ``log:`` file, headed by where and as what the job ran (host, pid,
SLURM job id when there is one, CUDA devices).
"""

from __future__ import annotations

import contextlib
import os
import socket
import traceback
from pathlib import Path


@contextlib.contextmanager
def logged(log_path, rule: str = ""):
    path = Path(log_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1) as fh, contextlib.redirect_stdout(fh), \
            contextlib.redirect_stderr(fh):
        print(f"# rule {rule} on host {socket.gethostname()} pid {os.getpid()} "
              f"SLURM_JOB_ID={os.environ.get('SLURM_JOB_ID', '-')} "
              f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '-')}", flush=True)
        try:
            yield
        except BaseException:
            traceback.print_exc(file=fh)
            fh.flush()
            raise


def dataspec(snakemake, data: dict | None = None):
    """The :class:`~lottery_mia.training.DataSpec` of a job: ``data`` (default
    ``params.data``: dataset, source, root) and the job's membership table."""
    from .training import DataSpec

    d = data if data is not None else snakemake.params.data
    return DataSpec(dataset=d["dataset"], source=d["source"], root=d["root"],
                    membership=str(snakemake.input.membership))

