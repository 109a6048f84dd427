"""Attack samples: which members and non-members an attack is trained and evaluated on.

For a dataset and a sample size n, :func:`make_attack_sample` draws n/2 scored members and
n/2 scored non-members from the membership table (seeded) and splits them into two disjoint
folds, ``attack_train`` and ``attack_test``.

Every fold is **class-stratified**: within a fold, each class has exactly as many members as
non-members. Confidence vectors carry the label (their argmax is usually the true class), so
if a class were over-represented among the members of one fold, an attack classifier would
learn "class -> member" there, and that relation would invert on the other fold when the
folds are near-complements of the pool (n close to the pool size): a below-chance accuracy
with no membership signal at all. With equal per-class counts the label alone carries no
membership information in either fold, and an attack on data without signal scores 0.5 in
expectation (``tests/test_attack_calibration.py`` holds the null test).

The sample depends on the dataset, n and the seed only, never on a model: every model and
replicate of the dataset is attacked on the same rows, and a transferred attack never scores
a sample it was trained on. Pure pandas/numpy: no torch here.

Columns: ``sample_id`` (int64), ``label`` (int64), ``member`` (bool), ``fold`` (string).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .io import read_parquet_frame

FOLDS = ("attack_train", "attack_test")
COLUMNS = ["sample_id", "label", "member", "fold"]


def _allocate(total: int, capacity: np.ndarray) -> np.ndarray:
    """Split ``total`` over classes in proportion to ``capacity``, never above it.

    Largest-remainder rounding; what a full class cannot take goes to the others.
    """
    alloc = np.zeros(len(capacity), dtype=np.int64)
    remaining = int(total)
    cap = capacity.astype(np.int64).copy()
    while remaining > 0:
        open_ = cap - alloc > 0
        if not open_.any():
            raise ValueError("not enough samples to allocate")  # checked by the caller
        share = np.where(open_, cap, 0).astype(float)
        exact = remaining * share / share.sum()
        add = np.minimum(np.floor(exact).astype(np.int64), cap - alloc)
        left = remaining - int(add.sum())
        if left > 0:  # largest remainders first, among classes with room left
            frac = np.where(open_ & (cap - alloc - add > 0), exact - np.floor(exact), -1.0)
            for c in np.argsort(-frac, kind="stable")[:left]:
                if frac[c] >= 0:
                    add[c] += 1
        if add.sum() == 0:  # tiny remainders everywhere: one each to the roomiest classes
            for c in np.argsort(-(cap - alloc), kind="stable")[:remaining]:
                add[c] += 1
        alloc += add
        remaining = int(total) - int(alloc.sum())
    return alloc


def same_class_pairs(membership: pd.DataFrame) -> int:
    """How many member/non-member pairs of the same class the scored rows hold: an attack
    sample of size n needs n/2 of them (the folds are class-stratified), so the largest n
    that works is twice this."""
    scored = membership[membership["scored"]]
    counts = scored.groupby(["label", "member"]).size().unstack(fill_value=0)
    if True not in counts or False not in counts:
        return 0
    return int(np.minimum(counts[True], counts[False]).sum())


def make_attack_sample(membership: pd.DataFrame, n: int, seed: int,
                       test_fraction: float = 0.5) -> pd.DataFrame:
    """n samples (n/2 members, n/2 non-members) in two disjoint, class-stratified folds.

    In each fold and each class, the number of members equals the number of non-members.
    The attack-test fold holds ``round(n/2 * test_fraction)`` member/non-member pairs.
    """
    if isinstance(n, bool) or int(n) != n or n <= 0 or n % 2:
        raise ValueError(f"attack sample size {n} must be a positive even number "
                         "(config key attack.sample_sizes)")
    n = int(n)
    half = n // 2
    n_test = int(round(half * test_fraction))
    if not 0 < n_test < half:
        raise ValueError(f"attack sample size {n} is too small to split into attack-train "
                         f"and attack-test halves with attack.test_fraction={test_fraction}; "
                         "raise attack.sample_sizes")
    scored = membership[membership["scored"]]
    classes = np.unique(scored["label"].to_numpy())
    by_class = []
    for c in classes:
        rows = scored[scored["label"] == c]
        by_class.append((rows.loc[rows["member"], "sample_id"].to_numpy(),
                         rows.loc[~rows["member"], "sample_id"].to_numpy()))
    capacity = np.array([min(len(m), len(nm)) for m, nm in by_class], dtype=np.int64)
    if half > capacity.sum():
        n_mem = int(scored["member"].sum())
        raise ValueError(
            f"attack sample size {n} needs {half} member/non-member pairs of the same class, "
            f"but the membership table has only {int(capacity.sum())} such pairs "
            f"({n_mem} scored members, {len(scored) - n_mem} non-members); lower "
            f"attack.sample_sizes to at most {2 * int(capacity.sum())}")
    rng = np.random.default_rng(seed)
    test_pairs = _allocate(n_test, capacity)
    train_pairs = _allocate(half - n_test, capacity - test_pairs)
    frames = []
    for c, (mem, non), k_test, k_train in zip(classes, by_class, test_pairs, train_pairs):
        k = int(k_test + k_train)
        if k == 0:
            continue
        mem_chosen = rng.choice(mem, size=k, replace=False)
        non_chosen = rng.choice(non, size=k, replace=False)
        fold = np.array(["attack_test"] * int(k_test) + ["attack_train"] * int(k_train))
        for is_member, chosen in ((True, mem_chosen), (False, non_chosen)):
            frames.append(pd.DataFrame({"sample_id": chosen.astype(np.int64),
                                        "label": np.int64(c), "member": is_member,
                                        "fold": fold}))
    sample = pd.concat(frames, ignore_index=True)
    # a stable, readable order: fold, then members first, then sample id
    sample = sample.sort_values(["fold", "member", "sample_id"],
                                ascending=[True, False, True]).reset_index(drop=True)
    sample["label"] = sample["label"].astype(np.int64)
    validate_attack_sample(sample)
    return sample[COLUMNS]


def validate_attack_sample(sample: pd.DataFrame, source: str = "attack sample") -> None:
    missing = [c for c in COLUMNS if c not in sample.columns]
    if missing:
        raise ValueError(f"{source}: missing columns {missing}; rebuild it (delete the file "
                         "and rerun the workflow)")
    if sample["sample_id"].duplicated().any():
        raise ValueError(f"{source}: a sample appears twice (folds must be disjoint)")
    for fold in FOLDS:
        part = sample[sample["fold"] == fold]
        if len(part) == 0:
            raise ValueError(f"{source}: fold {fold} is empty")
        counts = part.groupby(["label", "member"]).size().unstack(fill_value=0)
        if True not in counts or False not in counts or \
                not (counts[True] == counts[False]).all():
            raise ValueError(f"{source}: fold {fold} is not class-stratified (each class "
                             "needs as many members as non-members)")


def read_attack_sample(path) -> pd.DataFrame:
    sample = read_parquet_frame(path, "attack-sample table",
                                "delete it and rerun the workflow to rebuild it")
    validate_attack_sample(sample, str(path))
    return sample
