"""The membership split: which samples a target model trains on, and which it never sees.

This is the single source of truth for membership. It is made once per dataset by
:func:`make_membership_split` and written as a Parquet table; every later step (training,
confidence extraction, attack sampling) reads that table through :func:`read_membership`
and never re-derives membership.

Columns (one row per sample that plays a role):

============  =======  ================================================================
sample_id     int64    unique id of the sample within its source (see ``sources``)
pool          string   the pool it comes from (``train``/``test``/``val``/``all``)
pool_index    int64    its position in that pool
label         int64    its class
member        bool     True: in the target's training set; False: held out, never trained on
scored        bool     True: its confidences are extracted (all by default; ImageNet scores a
                       seeded subset of members to keep tables small)
============  =======  ================================================================
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .datasets import source_info

COLUMNS = ["sample_id", "pool", "pool_index", "label", "member", "scored"]


def make_membership_split(labels_by_pool: dict[str, np.ndarray], source: str, *,
                          members: int | None, nonmembers: int | None,
                          scored_members: int | None, seed: int) -> pd.DataFrame:
    """Draw a seeded membership split from the pools of ``source``.

    ``labels_by_pool`` maps pool name to the labels of every image in that pool (see
    :func:`lottery_mia.data.pool_labels`). ``members``/``nonmembers`` are counts (None: as
    many as the pools allow; for a single-pool source, half of it each).
    """
    info = source_info(source)
    rng = np.random.default_rng(seed)
    if info.member_pool == info.nonmember_pool:
        labels = labels_by_pool[info.member_pool]
        n = len(labels)
        n_mem = members if members is not None else n // 2
        n_non = nonmembers if nonmembers is not None else n - n_mem
        _check_count("members", n_mem, n)
        _check_count("nonmembers", n_non, n)
        if n_mem + n_non > n:
            raise ValueError(f"membership split: members + nonmembers = {n_mem + n_non} "
                             f"exceed the {n} samples of {source}; lower the dataset's "
                             "'members' or 'nonmembers' in the config")
        from sklearn.model_selection import train_test_split

        mem_idx, non_idx = train_test_split(
            np.arange(n), train_size=n_mem, test_size=n_non, stratify=labels, random_state=seed
        )
        mem_ids, non_ids = np.sort(mem_idx), np.sort(non_idx)
        mem = _rows(info.member_pool, mem_ids, mem_ids, labels, True)
        non = _rows(info.nonmember_pool, non_ids, non_ids, labels, False)
    else:
        mem_labels = labels_by_pool[info.member_pool]
        non_labels = labels_by_pool[info.nonmember_pool]
        n_mem_pool, n_non_pool = len(mem_labels), len(non_labels)
        n_mem = members if members is not None else n_mem_pool
        n_non = nonmembers if nonmembers is not None else n_non_pool
        _check_count("members", n_mem, n_mem_pool)
        _check_count("nonmembers", n_non, n_non_pool)
        mem_idx = np.sort(rng.choice(n_mem_pool, size=n_mem, replace=False))
        non_idx = np.sort(rng.choice(n_non_pool, size=n_non, replace=False))
        mem = _rows(info.member_pool, mem_idx, mem_idx, mem_labels, True)
        non = _rows(info.nonmember_pool, non_idx, n_mem_pool + non_idx, non_labels, False)
    table = pd.concat([mem, non], ignore_index=True)
    if scored_members is not None:
        _check_count("scored_members", scored_members, n_mem)
        chosen = rng.choice(np.flatnonzero(table["member"].to_numpy()), size=scored_members,
                            replace=False)
        table.loc[table["member"], "scored"] = False
        table.loc[chosen, "scored"] = True
    validate_membership(table)
    return table


def _check_count(name: str, n: int, available: int) -> None:
    if n <= 0 or n > available:
        raise ValueError(
            f"membership split: {name}={n} is not possible, only {available} samples are "
            f"available for it; lower the dataset's '{name}' in the config"
        )


def _rows(pool, pool_index, sample_id, labels, member: bool) -> pd.DataFrame:
    return pd.DataFrame({
        "sample_id": np.asarray(sample_id, dtype=np.int64),
        "pool": pool,
        "pool_index": np.asarray(pool_index, dtype=np.int64),
        "label": np.asarray(labels)[pool_index].astype(np.int64),
        "member": member,
        "scored": True,
    })


def validate_membership(table: pd.DataFrame) -> None:
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"membership table lacks columns {missing}")
    if table["sample_id"].duplicated().any():
        raise ValueError("membership table: a sample_id appears twice (members and "
                         "non-members must be disjoint)")
    if table.duplicated(["pool", "pool_index"]).any():
        raise ValueError("membership table: a (pool, pool_index) appears twice")
    if table["member"].all() or not table["member"].any():
        raise ValueError("membership table needs both members and non-members")


def write_membership(table: pd.DataFrame, path: str | Path) -> None:
    from .io import atomic_path

    validate_membership(table)
    with atomic_path(path) as tmp:
        table[COLUMNS].to_parquet(tmp, index=False)


def read_membership(path: str | Path) -> pd.DataFrame:
    fix = "delete it and rerun the membership_split rule"
    try:
        table = pd.read_parquet(path)
    except Exception as err:  # noqa: BLE001 - every failure becomes one clear message
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        raise ValueError(f"membership table {path} cannot be read ({first}); {fix}") from None
    try:
        validate_membership(table)
    except ValueError as err:
        raise ValueError(f"{path}: {err}; {fix}") from None
    if table["member"].dtype != bool:
        raise ValueError(f"{path}: membership table column 'member' is not boolean; {fix}")
    return table
