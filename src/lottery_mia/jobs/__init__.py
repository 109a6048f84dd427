"""The jobs layer: one entry point per rule of the workflow, each reading its inputs,
calling the library and writing its outputs. The scripts under ``workflow/scripts`` turn
``snakemake.input/params/output`` into one call of a function here, inside :func:`logged`,
so progress lines, warnings and a failing job's traceback land in the rule's log file,
headed by where and as what the job ran (host, pid, SLURM job id, CUDA devices).

Modules: :mod:`.split` (membership split, reference inclusion, attack samples), :mod:`.train`
(dense networks and pruned ones), :mod:`.prune` (masks), :mod:`.score` (confidence tables),
:mod:`.attack` (attacks, transfer), :mod:`.summarize` (summary tables), :mod:`.tables`
(Table 1, verdicts, slices), :mod:`.figure` (any registered figure), :mod:`.report`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import traceback
from pathlib import Path

__all__ = ["logged", "dataspec"]


@contextlib.contextmanager
def logged(log_path, rule: str = ""):
    path = Path(log_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1) as fh, contextlib.redirect_stdout(fh), \
            contextlib.redirect_stderr(fh):
        print(f"# rule {rule} on host {socket.gethostname()} pid {os.getpid()} "
              f"SLURM_JOB_ID={os.environ.get('SLURM_JOB_ID', '-')} "
              f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '-')}"
              + (" (forked by the warm worker)" if os.environ.get("LOTTERY_MIA_WARM_CHILD")
                 else ""), flush=True)
        try:
            yield
        except BaseException:
            traceback.print_exc(file=fh)
            fh.flush()
            raise


def dataspec(data: dict, membership):
    """The :class:`~lottery_mia.data.DataSpec` of a job: ``data`` (dataset, source, root, as
    the plan hands them) and the job's membership table."""
    from ..data import DataSpec

    return DataSpec(dataset=data["dataset"], source=data["source"], root=data["root"],
                    membership=str(membership))
