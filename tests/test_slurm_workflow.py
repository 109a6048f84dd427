"""The workflow through a real SLURM cluster (single node, started by the test)."""

from __future__ import annotations

import copy
import os
import re
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, SRC, run_snakemake, tiny_config, write_config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slurm_cluster import slurm_available, start_cluster  # noqa: E402

_OK, _REASON = slurm_available()

REMOTE_RULES = {"membership_split", "train_dense", "prune_mask", "train_ticket",
                "extract_confidences", "attack_sample", "fit_attack", "transfer_attack",
                "reference_split", "input_features"}


def slurm_config() -> dict:
    cfg = copy.deepcopy(tiny_config())
    cfg["architectures"] = ["resnet18"]
    cfg["sparsities"] = [0.0, 0.8]
    cfg["training"]["digits"].pop("resnet50")
    cfg["attack"]["sample_sizes"] = [200]
    cfg["transfer"].update(architectures=["resnet18"], sparsities=[0.0, 0.8])
    cfg["references"]["count"] = 0  # the local workflow test runs the reference models
    return cfg


@pytest.mark.slurm
@pytest.mark.slow
@pytest.mark.needs_system(_OK, f"SLURM test cluster unavailable: {_REASON}")
def test_workflow_runs_as_slurm_jobs_and_writes_the_report(tmp_path: Path) -> None:
    work = tmp_path / "run"
    write_config(work, slurm_config())
    t0 = time.time()
    with start_cluster(tmp_path / "cluster") as cluster:
        env = dict(cluster.env)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONPATH"] = str(SRC)
        proc = run_snakemake(work, "--profile", str(ROOT / "profiles" / "slurm-test"),
                             env=env, check=False, timeout=1500)
        if proc.returncode != 0:
            pytest.fail(f"snakemake on SLURM failed:\n{proc.stdout[-4000:]}\n"
                        f"{proc.stderr[-4000:]}\n{cluster.log_tails()}")
    wall = time.time() - t0
    print(f"SLURM workflow wall time: {wall:.1f}s")
    assert (work / "results" / "report.html").exists()
    job_ids = {}
    for log in (work / "logs").rglob("*.log"):
        head = log.read_text().splitlines()[0]
        m = re.search(r"# rule (\S+) .*SLURM_JOB_ID=(\S+)", head)
        assert m, f"{log}: {head}"
        rule, job = m.groups()
        if rule in REMOTE_RULES:
            assert job.isdigit(), f"{rule} did not run as a SLURM job: {head}"
            job_ids[log] = job
        else:  # localrules run on the submit host
            assert job == "-", f"local rule {rule} ran inside SLURM: {head}"
    assert len(job_ids) >= 10 and len(set(job_ids.values())) == len(job_ids)
