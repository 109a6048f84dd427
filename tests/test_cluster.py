"""The shipped SLURM profile's placeholders are refused when the DAG is built, naming the key
and what to put there; an adapted profile builds the same DAG as no profile."""

from __future__ import annotations

import re

from conftest import ROOT, planned_jobs, run_snakemake, tiny_config, write_config

from lottery_mia.cluster import placeholder_resources


def test_placeholders_are_found_in_defaults_and_per_rule_settings():
    problems = placeholder_resources({"slurm_partition": "CHANGEME", "mem_mb": 4000,
                                      "slurm_account": "lab42"},
                                     {"train_dense": {"slurm_partition": "CHANGEME_gpu"}})
    assert len(problems) == 2
    assert problems[0].startswith("default-resources.slurm_partition: 'CHANGEME'")
    assert "sinfo -s" in problems[0]
    assert problems[1].startswith("set-resources.train_dense.slurm_partition")
    assert placeholder_resources({"slurm_partition": "gpu", "runtime": 60}) == []
    assert placeholder_resources(None, None) == []


def test_the_shipped_slurm_profile_is_refused_until_adapted(tmp_path):
    write_config(tmp_path, tiny_config())
    profile = ROOT / "profiles" / "slurm"
    proc = run_snakemake(tmp_path, "-n", "--profile", str(profile), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "default-resources.slurm_partition: 'CHANGEME'" in out
    assert "default-resources.slurm_account: 'CHANGEME'" in out
    # adapted: the same DAG as a local dry run
    adapted = tmp_path / "profile"
    adapted.mkdir()
    text = (profile / "config.yaml").read_text()
    text = re.sub(r'slurm_partition: "CHANGEME"', 'slurm_partition: "gpu"', text)
    text = re.sub(r'slurm_account: "CHANGEME"', 'slurm_account: "lab42"', text)
    (adapted / "config.yaml").write_text(text)
    proc = run_snakemake(tmp_path, "-n", "--profile", str(adapted))
    local = run_snakemake(tmp_path, "-n", "--cores", "1")
    assert planned_jobs(proc.stdout + proc.stderr) == planned_jobs(local.stdout + local.stderr)
