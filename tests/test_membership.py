import numpy as np
import pandas as pd
import pytest

from lottery_mia.membership import make_membership_split, read_membership, write_membership


def digits_labels():
    from sklearn.datasets import load_digits

    return {"all": load_digits().target}


def test_members_and_nonmembers_are_disjoint_and_seeded():
    a = make_membership_split(digits_labels(), "digits", members=None, nonmembers=None,
                              scored_members=None, seed=3)
    assert not set(a[a.member].sample_id) & set(a[~a.member].sample_id)
    assert a.member.sum() == 898 and (~a.member).sum() == 899
    b = make_membership_split(digits_labels(), "digits", members=None, nonmembers=None,
                              scored_members=None, seed=3)
    pd.testing.assert_frame_equal(a, b)
    c = make_membership_split(digits_labels(), "digits", members=None, nonmembers=None,
                              scored_members=None, seed=4)
    assert set(c[c.member].sample_id) != set(a[a.member].sample_id)
    # stratified: every class is represented among members and non-members alike
    counts = a.groupby(["member", "label"]).size().unstack(0)
    assert (counts.min() > 0).all() and (counts[True] - counts[False]).abs().max() <= 1


def test_two_pool_split_uses_both_pools_and_can_pick_the_last_sample():
    labels = {"train": np.arange(50) % 10, "test": np.arange(20) % 10}
    t = make_membership_split(labels, "cifar10", members=None, nonmembers=None,
                              scored_members=None, seed=0)
    mem, non = t[t.member], t[~t.member]
    assert set(mem.pool) == {"train"} and set(non.pool) == {"test"}
    assert mem.pool_index.max() == 49 and non.pool_index.max() == 19  # last samples included
    assert set(non.sample_id) == set(50 + non.pool_index)
    assert (t.label == np.where(t.member, labels["train"][t.pool_index % 50],
                                labels["test"][t.pool_index % 20])).all()
    # subsets: over many seeds, every sample (the last one too) gets picked
    picked = set()
    for seed in range(40):
        s = make_membership_split(labels, "cifar10", members=10, nonmembers=5,
                                  scored_members=None, seed=seed)
        picked |= set(s[s.member].pool_index)
    assert picked == set(range(50))


def test_scored_members_subset_and_roundtrip(tmp_path):
    labels = {"train": np.arange(100) % 10, "test": np.arange(30) % 10}
    t = make_membership_split(labels, "cifar10", members=80, nonmembers=30, scored_members=25,
                              seed=1)
    assert t[t.member].scored.sum() == 25 and t[~t.member].scored.all()
    write_membership(t, tmp_path / "m.parquet")
    pd.testing.assert_frame_equal(read_membership(tmp_path / "m.parquet"), t)


def test_an_overlapping_table_is_refused(tmp_path):
    t = make_membership_split(digits_labels(), "digits", members=100, nonmembers=100,
                              scored_members=None, seed=0)
    bad = t.copy()
    bad.loc[bad.index[-1], "sample_id"] = bad.loc[bad.index[0], "sample_id"]
    with pytest.raises(ValueError, match="disjoint|twice"):
        write_membership(bad, tmp_path / "bad.parquet")


def test_impossible_sizes_name_the_key():
    with pytest.raises(ValueError, match="members"):
        make_membership_split({"train": np.arange(10), "test": np.arange(5)}, "cifar10",
                              members=11, nonmembers=None, scored_members=None, seed=0)
    with pytest.raises(ValueError, match=r"members \+ nonmembers"):
        make_membership_split(digits_labels(), "digits", members=1000, nonmembers=900,
                              scored_members=None, seed=0)
