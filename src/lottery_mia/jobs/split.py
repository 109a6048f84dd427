"""The jobs that depend only on the data and the membership split: the split itself (rule
``membership_split``), the reference models' inclusion (``reference_split``) and the attack
samples (``attack_sample``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..attack_samples import make_attack_sample
from ..io import atomic_path, log
from ..membership import make_membership_split, read_membership, write_membership
from ..references import make_inclusion, reference_membership

__all__ = ["build_membership_split", "build_references", "build_attack_sample"]


def build_membership_split(source: str, root, *, key: str, download: bool, members,
                           nonmembers, scored_members, seed: int, output: str | Path) -> pd.DataFrame:
    """Workflow entry point: read the pools' labels, draw the split, write the table."""
    from ..data import pool_labels

    labels = pool_labels(source, root, key=key, download=download)
    table = make_membership_split(labels, source, members=members, nonmembers=nonmembers,
                                  scored_members=scored_members, seed=seed)
    write_membership(table, output)
    n_mem = int(table["member"].sum())
    print(f"membership split for {source}: {n_mem} members, {len(table) - n_mem} non-members, "
          f"{int(table['scored'].sum())} scored; written to {output}", flush=True)
    return table


def build_references(*, membership_path, count: int, seed: int, out_inclusion,
                     out_memberships: list) -> pd.DataFrame:
    """Workflow entry point: the inclusion table and every reference's membership table."""
    membership = read_membership(membership_path)
    inclusion = make_inclusion(membership, count, seed)
    with atomic_path(out_inclusion) as tmp:
        inclusion.to_parquet(tmp, index=False)
    for r, path in enumerate(out_memberships):
        write_membership(reference_membership(membership, inclusion, r), path)
    per = inclusion.groupby("reference")["included"].sum()
    log(f"{count} reference models over a pool of {inclusion.sample_id.nunique()} samples: "
        f"{int(per.min())}-{int(per.max())} IN samples each -> {out_inclusion}")
    return inclusion



def build_attack_sample(*, membership_path, n: int, seed: int, test_fraction: float,
                        output) -> pd.DataFrame:
    """Workflow entry point: draw the sample of size n and write it as Parquet."""
    sample = make_attack_sample(read_membership(membership_path), n, seed, test_fraction)
    with atomic_path(output) as tmp:
        sample.to_parquet(tmp, index=False)
    log(f"attack sample n={n}: {int((sample.fold == 'attack_train').sum())} attack-train, "
        f"{int((sample.fold == 'attack_test').sum())} attack-test rows, "
        f"{sample.label.nunique()} classes, stratified -> {output}")
    return sample
