"""The jobs that depend only on the data and the membership split: the split itself (rule
``membership_split``), the reference models' inclusion (``reference_split``) and the attack
samples (``attack_sample``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import pandas as pd

from ..attack_samples import make_attack_sample
from ..io import atomic_path, log
from ..membership import make_membership_split, read_membership, write_membership
from ..references import make_inclusion, reference_membership

__all__ = ["build_membership_split", "build_references", "build_attack_sample",
           "build_input_features", "read_input_features"]


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


# A member/non-member image overlap above this share of the smaller side is a broken
# dataset (a copied batch or split file), not the few identical images real datasets hold.
DUPLICATE_SHARE_LIMIT = 0.01


def check_data(*, membership_path, source: str, sample_paths: list, sample_sizes: list,
               inclusion_path=None, output, root=None, key: str | None = None) -> dict:
    """Everything that needs only the data and the membership split, checked before any
    network trains (rule ``check_data``; the training jobs wait for its record): what the
    source declares in ``data_checks`` (:data:`lottery_mia.datasets.registry.DATA_CHECKS`:
    labels within its classes, enough same-class member/non-member pairs for every attack
    sample size, no image on both sides of the split), and the attack samples and the
    reference inclusion readable and consistent. Writes what it checked as JSON."""
    from ..attack_samples import read_attack_sample, same_class_pairs
    from ..io import write_json
    from ..references import read_inclusion
    from ..datasets import dataset_source, source_info

    table = read_membership(membership_path)
    classes = source_info(source).num_classes
    declared = dataset_source(source).data_checks
    duplicates = (image_overlap(table, source, root, key or f"datasets.{source}.root",
                                membership_path)
                  if "duplicates" in declared else None)
    bad = table[(table["label"] < 0) | (table["label"] >= classes)]
    if len(bad):
        raise ValueError(f"{membership_path}: label {int(bad['label'].iat[0])} is outside the "
                         f"{classes} classes of {source}; the dataset files are not {source}'s "
                         "(check the dataset root), then delete the table and rerun")
    pairs = same_class_pairs(table)
    for n in sample_sizes:
        if n // 2 > pairs:
            raise ValueError(f"attack sample size {n} needs {n // 2} member/non-member pairs "
                             f"of the same class, but {membership_path} has {pairs}; lower "
                             f"attack.sample_sizes to at most {2 * pairs}")
    for path in sample_paths:
        read_attack_sample(path)
    refs = None
    if inclusion_path is not None:
        inc = read_inclusion(inclusion_path)
        refs = int(inc["reference"].nunique())
    record = {"members": int(table["member"].sum()), "nonmembers": int((~table["member"]).sum()),
              "scored": int(table["scored"].sum()), "classes": classes,
              "same_class_pairs": pairs, "largest_sample_size": 2 * pairs,
              "sample_sizes": [int(n) for n in sample_sizes], "references": refs,
              "checks": list(declared), "duplicates": duplicates}
    write_json(record, output)
    log(f"data checks passed: {record}")
    return record


def image_overlap(table, source: str, root, key: str, membership_path) -> dict:
    """Images that are both a member and a non-member of the split (identical content
    hashes): a ValueError naming the files when they exceed :data:`DUPLICATE_SHARE_LIMIT`
    of the smaller side (a batch or split file copied over another), recorded otherwise,
    with repeats inside the rows counted too."""
    from collections import Counter

    from ..datasets import check_root, dataset_source

    ds = dataset_source(source)
    resolved = check_root(source, root, key)
    digest = np.empty(len(table), dtype=object)
    for pool in table["pool"].unique().tolist():
        sel = (table["pool"] == pool).to_numpy()
        digest[sel] = ds.image_digests(resolved, pool, table.loc[sel, "pool_index"].to_numpy())
    member = table["member"].to_numpy()
    mem, non = set(digest[member]), set(digest[~member])
    both = mem & non
    counts = Counter(digest.tolist())
    repeated = sum(c - 1 for c in counts.values() if c > 1)
    crossing = np.flatnonzero(np.isin(digest, list(both)) & ~member) if both else []
    ids = table["sample_id"].to_numpy()[crossing].tolist()
    smaller = max(1, min(int(member.sum()), int((~member).sum())))
    record = {"member_nonmember_overlap": len(ids), "repeated_images": int(repeated),
              "overlap_sample_ids": [int(i) for i in ids[:20]]}
    if len(ids) > DUPLICATE_SHARE_LIMIT * smaller:
        pools = sorted(set(table["pool"].to_numpy()[crossing].tolist()))
        raise ValueError(f"{len(ids)} non-members of {membership_path} are pixel-for-pixel "
                         f"images of members too (e.g. sample_id {ids[:5]}, pools {pools}): "
                         f"the {source} files under {root} hold copies (a batch or split "
                         "file copied over another?); restore the original files, delete "
                         "the membership table and rerun")
    if ids:
        log(f"{len(ids)} non-member(s) are identical to a member (sample_id {ids[:10]}); "
            "recorded in the data checks")
    return record


def build_input_features(*, membership_path, source: str, root, key: str, size: int,
                         output) -> pd.DataFrame:
    """Workflow entry point: a thumbnail of every scored sample of the split
    (:meth:`lottery_mia.datasets.registry.DatasetSource.thumbnails`), written as Parquet
    (``sample_id``, ``label``, ``features``: a fixed-size list of float32)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..datasets import check_root, dataset_source

    table = read_membership(membership_path)
    table = table[table["scored"].to_numpy(dtype=bool)].reset_index(drop=True)
    ds = dataset_source(source)
    resolved = check_root(source, root, key)
    parts = {}
    for pool in table["pool"].unique().tolist():
        sel = (table["pool"] == pool).to_numpy()
        parts[pool] = (np.flatnonzero(sel), ds.thumbnails(
            resolved, pool, table.loc[sel, "pool_index"].to_numpy(), size))
    width = next(iter(parts.values()))[1].shape[1]
    feats = np.empty((len(table), width), dtype=np.float32)
    for rows, x in parts.values():
        feats[rows] = x
    flat = pa.array(np.ascontiguousarray(feats).ravel())
    out = pa.table({"sample_id": pa.array(table["sample_id"].to_numpy(dtype=np.int64)),
                    "label": pa.array(table["label"].to_numpy(dtype=np.int64)),
                    "features": pa.FixedSizeListArray.from_arrays(flat, width)})
    with atomic_path(output) as tmp:
        pq.write_table(out, tmp)
    log(f"{len(table)} scored samples of {source}: {width} thumbnail features each "
        f"(at most {size} x {size} per channel) -> {output}")
    return table


def read_input_features(path, sample_ids) -> np.ndarray:
    """The thumbnail features (n, F) float32 of ``sample_ids`` (in that order) from
    ``path``; an id it lacks is a ValueError naming the file."""
    import pyarrow.parquet as pq

    t = pq.read_table(path)
    ids = t.column("sample_id").to_numpy()
    col = t.column("features").combine_chunks()
    x = col.values.to_numpy().reshape(len(ids), col.type.list_size)
    order = np.argsort(ids, kind="stable")
    want = np.asarray(sample_ids, dtype=np.int64)
    pos = np.searchsorted(ids[order], want)
    pos = np.minimum(pos, len(ids) - 1)
    found = ids[order][pos] == want
    if not found.all():
        raise ValueError(f"{path} has no features of sample_id {int(want[~found][0])}: it was "
                         "made from another membership table; delete it and rerun the "
                         "input_features rule")
    return np.ascontiguousarray(x[order[pos]], dtype=np.float32)
