"""Smoke test: the throw-away SLURM test cluster starts, runs a batch job and stops."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slurm_cluster import slurm_available, start_cluster  # noqa: E402

_OK, _REASON = slurm_available()


@pytest.mark.slurm
@pytest.mark.needs_system(_OK, f"SLURM test cluster unavailable: {_REASON}")
def test_slurm_cluster_runs_batch_job(tmp_path: Path) -> None:
    out = tmp_path / "job_id.txt"
    with start_cluster(tmp_path / "cluster") as cluster:
        assert cluster.node_state().startswith("idle")
        r = cluster.run(
            "sbatch",
            "--parsable",
            "-p",
            cluster.partition,
            "-t",
            "1",
            "--mem",
            "100",
            "-o",
            str(tmp_path / "slurm-%j.out"),
            "--wrap",
            f'echo "$SLURM_JOB_ID" > {out}',
        )
        job_id = r.stdout.strip().split(";")[0]
        assert job_id.isdigit(), r.stdout
        state = cluster.wait_job(job_id, timeout=120)
        assert state == "COMPLETED", f"job {job_id} ended {state}\n{cluster.log_tails()}"
        assert out.read_text().strip() == job_id
        pids = list(cluster.pids.values())
    # every daemon the helper started is gone afterwards
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
