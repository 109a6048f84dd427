"""Checks of the cluster profile a run was started with (no torch, no Snakemake import).

``profiles/slurm/config.yaml`` ships with placeholder values (``CHANGEME``) that the user
must replace with their cluster's partition and account. Submitted as they are, every job
is rejected by ``sbatch`` one at a time; the workflow refuses them when the DAG is built.
"""

from __future__ import annotations

PLACEHOLDER = "CHANGEME"

# Resources that name something of the cluster (a partition, an account, a QoS ...).
CLUSTER_RESOURCES = ("slurm_partition", "slurm_account", "slurm_qos", "gpu_model", "gres",
                     "constraint")


def _raw(value):
    """The value as written in the profile (Snakemake wraps it in a ``Resource``)."""
    return getattr(value, "raw", value)


def placeholder_resources(default_resources, overwrite_resources=None) -> list[str]:
    """Problems, one line each, for every cluster resource of the profile still set to the
    placeholder: ``default_resources`` (resource -> value) and ``overwrite_resources``
    (rule -> resource -> value), as Snakemake parsed them from the profile."""
    problems = []

    def check(where: str, mapping) -> None:
        for name in mapping or {}:
            if name not in CLUSTER_RESOURCES:
                continue
            value = _raw(mapping[name])
            if isinstance(value, str) and PLACEHOLDER in value:
                problems.append(f"{where}{name}: {value!r} is the profile's placeholder; "
                                f"{HOW_TO_FIX.get(name, 'set the value your cluster uses')}")

    check("default-resources.", default_resources)
    for rule, mapping in (overwrite_resources or {}).items():
        check(f"set-resources.{rule}.", mapping)
    return problems


HOW_TO_FIX = {
    "slurm_partition": "set it to your partition (`sinfo -s` lists them)",
    "slurm_account": "set it to your account (`sacctmgr show assoc user=$USER "
                     "format=account`), or delete the line if your cluster has no accounts",
}
