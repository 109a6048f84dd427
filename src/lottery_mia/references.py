"""Reference models: who trains on what (pure pandas/numpy; no torch).

Carlini et al.'s design: the target and every reference train on same-size random halves of
one pool. Here the target trains on its m members; the **reference pool** is 2r of the scored
samples, r = min(m, scored samples // 2): every scored member, and seeded scored non-members
to make up 2r (when the scored samples are fewer than 2m, the pool is all of them and r < m:
:func:`reference_size` says so, and the config check warns). The K references (K even) come
in pairs: each pair splits the pool into a seeded half and its complement, so every
reference trains on exactly r samples and every pool sample is IN for exactly K/2 of them;
scored samples outside the pool are OUT for all. The inclusion table (``reference`` x
``sample_id`` -> ``included``, every scored sample) is the single record of which reference
saw which sample; each reference's own membership table (the membership schema, ``member`` =
included) is derived from it and is what its training and scoring jobs read, exactly as a
target's jobs read the dataset's table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .io import read_parquet_frame

INCLUSION_COLUMNS = ["reference", "sample_id", "included"]


def reference_size(members: int, scored: int) -> int:
    """r, the training-set size of every reference: the target's ``members`` when the
    ``scored`` samples hold twice as many, else half of them."""
    return min(int(members), int(scored) // 2)


def inclusion_from_ids(member_ids, nonmember_ids, k: int, seed: int) -> pd.DataFrame:
    """:func:`make_inclusion` for a model trained outside the pipeline: the reference halves
    (``reference``, ``sample_id``, ``included``) drawn from plain sample ids of its members
    and of held-out samples (the target's training set and data it never saw): train
    reference ``r`` on the ids with ``included`` true, then give the audit its logits."""
    mem = np.asarray(member_ids).astype(np.int64).ravel()
    non = np.asarray(nonmember_ids).astype(np.int64).ravel()
    if not len(mem) or not len(non):
        raise ValueError("inclusion_from_ids needs member ids and non-member ids")
    if len(np.unique(np.concatenate([mem, non]))) != len(mem) + len(non):
        raise ValueError("inclusion_from_ids: an id is repeated, or both a member and a "
                         "non-member")
    membership = pd.DataFrame({"sample_id": np.concatenate([mem, non]),
                               "member": np.r_[np.ones(len(mem), bool), np.zeros(len(non), bool)],
                               "scored": True})
    return make_inclusion(membership, k, seed)


def make_inclusion(membership: pd.DataFrame, k: int, seed: int) -> pd.DataFrame:
    """Seeded inclusion of the reference pool's samples in exactly half of ``k`` references,
    each reference on exactly r of them (see the module doc)."""
    if k < 2 or k % 2:
        raise ValueError(f"references.count={k}: reference attacks need an even number of "
                         "at least 2 reference models (16 or more for per-sample variances), "
                         "so that every pool sample is IN for exactly half of them")
    scored = membership[membership["scored"]].sort_values("sample_id")
    ids = scored["sample_id"].to_numpy()
    member = scored["member"].to_numpy()
    r = reference_size(int(membership["member"].sum()), len(ids))
    rng = np.random.default_rng(seed)
    if len(ids) == 2 * r:
        pool = np.arange(len(ids))
    else:  # every scored member, then seeded non-members up to 2r
        mem, non = np.flatnonzero(member), np.flatnonzero(~member)
        take = min(len(mem), 2 * r)
        pool = np.sort(np.concatenate([rng.choice(mem, take, replace=False) if take < len(mem)
                                       else mem,
                                       rng.choice(non, 2 * r - take, replace=False)]))
    included = np.zeros((k, len(ids)), bool)
    for j in range(k // 2):  # a pair: a seeded half of the pool and its complement
        half = rng.permutation(pool)
        included[2 * j, half[:r]] = True
        included[2 * j + 1, half[r:]] = True
    frame = pd.DataFrame({"reference": np.repeat(np.arange(k), len(ids)),
                          "sample_id": np.tile(ids, k).astype(np.int64),
                          "included": included.ravel()})
    validate_inclusion(frame)
    return frame


def validate_inclusion(frame: pd.DataFrame, source: str = "inclusion table") -> None:
    missing = [c for c in INCLUSION_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{source}: missing columns {missing}; delete it and rerun")
    if frame.duplicated(["reference", "sample_id"]).any():
        raise ValueError(f"{source}: a (reference, sample_id) appears twice")
    counts = frame.groupby("reference")["included"].agg(["sum", "size"])
    if ((counts["sum"] == 0) | (counts["sum"] == counts["size"])).any():
        raise ValueError(f"{source}: a reference has no IN or no OUT samples")


def reference_membership(membership: pd.DataFrame, inclusion: pd.DataFrame,
                         reference: int) -> pd.DataFrame:
    """Reference ``reference``'s membership table: the pool, member = included."""
    part = inclusion[inclusion["reference"] == reference]
    if part.empty:
        raise ValueError(f"reference {reference} is not in the inclusion table")
    pool = membership[membership["scored"]].set_index("sample_id")
    table = pool.loc[part["sample_id"].to_numpy()].reset_index()
    table["member"] = part["included"].to_numpy()
    table["scored"] = True
    return table[["sample_id", "pool", "pool_index", "label", "member", "scored"]]


def inclusion_matrix(inclusion: pd.DataFrame, sample_ids, k: int) -> np.ndarray:
    """(k, len(sample_ids)) bool: reference r trained on sample_ids[i]."""
    wide = inclusion.pivot(index="sample_id", columns="reference", values="included")
    missing = set(range(k)) - set(wide.columns)
    if missing:
        raise ValueError(f"the inclusion table lacks references {sorted(missing)}")
    try:
        return wide.loc[np.asarray(sample_ids), list(range(k))].to_numpy(dtype=bool).T
    except KeyError as err:
        raise ValueError(f"the inclusion table lacks sample {err}; rerun") from None


def read_inclusion(path) -> pd.DataFrame:
    frame = read_parquet_frame(path, "inclusion table", "delete it and rerun the workflow")
    validate_inclusion(frame, str(path))
    return frame
