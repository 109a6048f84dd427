"""Reference models: who trains on what (pure pandas/numpy; no torch).

The population pool of a dataset is the scored members and non-members of its membership
table (the samples whose confidences are extracted). ``K`` reference models are trained on
seeded halves of that pool: the inclusion table assigns every pool sample to exactly ``K/2``
references (K is even), so each sample is IN for exactly half of them and each reference
trains on about half of the pool, as in Carlini et al.'s LiRA. The inclusion table (``reference`` x ``sample_id`` -> ``included``) is the single
record of which reference saw which sample; each reference's own membership table (the
membership schema, ``member`` = included) is derived from it and is what its training and
scoring jobs read, exactly as a target's jobs read the dataset's table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .io import read_parquet_frame

INCLUSION_COLUMNS = ["reference", "sample_id", "included"]


def make_inclusion(membership: pd.DataFrame, k: int, seed: int) -> pd.DataFrame:
    """Seeded inclusion of every pool sample in exactly half of ``k`` references."""
    if k < 2 or k % 2:
        raise ValueError(f"references.count={k}: reference attacks need an even number of "
                         "at least 2 reference models (16 or more for per-sample variances), "
                         "so that every pool sample is IN for exactly half of them")
    pool = membership[membership["scored"]].sort_values("sample_id")
    ids = pool["sample_id"].to_numpy()
    rng = np.random.default_rng(seed)
    # rank k random numbers per sample: the references ranked below k/2 include it
    order = rng.random((k, len(ids))).argsort(axis=0).argsort(axis=0)
    included = order < k // 2
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
