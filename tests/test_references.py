"""Reference models: the inclusion table, each reference's membership, and their place in
the DAG (their own dense run, mask and ticket, never the target's)."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
from sklearn.datasets import load_digits

from lottery_mia.membership import make_membership_split
from lottery_mia.references import (inclusion_matrix, make_inclusion, reference_membership,
                                    reference_size, validate_inclusion)


@pytest.fixture(scope="module")
def membership():
    return make_membership_split({"all": load_digits().target}, "digits", members=250,
                                 nonmembers=None, scored_members=None, seed=0)


@pytest.mark.parametrize("k", [2, 4, 6, 16])
def test_every_pool_sample_is_in_exactly_half_of_the_references(membership, k):
    inc = make_inclusion(membership, k, seed=7)
    scored = membership[membership["scored"]]
    assert set(inc["sample_id"]) == set(scored["sample_id"])
    per_sample = inc.groupby("sample_id")["included"].sum()
    pool = per_sample[per_sample > 0]
    # the pool: every scored member plus as many scored non-members, each IN for K/2
    assert set(pool.unique()) == {k // 2}
    m = int(membership["member"].sum())
    assert len(pool) == 2 * m
    assert set(scored.loc[scored["member"], "sample_id"]) <= set(pool.index)
    # every reference trains on exactly the target's member count
    per_ref = inc.groupby("reference")["included"].sum()
    assert (per_ref == m).all()
    assert inc.equals(make_inclusion(membership, k, seed=7))
    assert not inc.equals(make_inclusion(membership, k, seed=8))
    validate_inclusion(inc)


def test_reference_size_is_the_target_member_count_when_the_scored_samples_allow():
    assert reference_size(250, 1797) == 250
    assert reference_size(300, 500) == 250  # fewer than 2m scored: half of them
    few = make_membership_split({"all": load_digits().target}, "digits", members=300,
                                nonmembers=200, scored_members=None, seed=0)
    inc = make_inclusion(few, 4, seed=1)
    assert (inc.groupby("reference")["included"].sum() == 250).all()
    assert (inc.groupby("sample_id")["included"].sum() == 2).all()


def test_on_the_default_digits_split_each_reference_trains_on_the_targets_member_count():
    from conftest import ROOT
    from lottery_mia.config import load_config

    import yaml

    cfg = load_config(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))
    ds = cfg.datasets["digits"]
    split = make_membership_split({"all": load_digits().target}, "digits",
                                  members=ds.members, nonmembers=ds.nonmembers,
                                  scored_members=ds.scored_members, seed=ds.split_seed)
    inc = make_inclusion(split, cfg.references.count, seed=cfg.references.seed)
    m = int(split["member"].sum())
    assert (inc.groupby("reference")["included"].sum() == m).all()


def test_each_reference_trains_on_exactly_its_half(membership):
    inc = make_inclusion(membership, 4, seed=0)
    for k in range(4):
        table = reference_membership(membership, inc, k)
        mine = inc[inc["reference"] == k].set_index("sample_id")["included"]
        assert (table.set_index("sample_id")["member"] == mine.loc[table["sample_id"]].values).all()
        assert set(table["sample_id"]) == set(membership.loc[membership["scored"], "sample_id"])
        # labels, pools and positions are the dataset's own
        src = membership.set_index("sample_id").loc[table["sample_id"]]
        assert (src["label"].values == table["label"].values).all()
        assert (src["pool_index"].values == table["pool_index"].values).all()
    m = inclusion_matrix(inc, [5, 3, 1], 4)
    assert m.shape == (4, 3)
    want = inc.set_index(["reference", "sample_id"])["included"]
    assert all(m[r, i] == want[(r, s)] for r in range(4) for i, s in enumerate([5, 3, 1]))


@pytest.mark.parametrize("k", [1, 3, 5])
def test_fewer_than_two_or_an_odd_number_of_references_are_refused(membership, k):
    with pytest.raises(ValueError, match="references.count"):
        make_inclusion(membership, k, seed=0)


@pytest.mark.slow
def test_reference_tickets_come_from_their_own_dense_runs(tmp_path):
    from conftest import planned_jobs, run_snakemake, tiny_config, write_config

    cfg = copy.deepcopy(tiny_config())
    cfg["pruning"]["methods"] = ["oneshot"]
    cfg["references"] = {"count": 4, "seed": 500, "architectures": ["resnet18"],
                         "sparsities": [0.0, 0.8],
                         "attacks": ["lira_online", "lira_offline", "rmia", "shadow_mlp"]}
    write_config(tmp_path, cfg)
    proc = run_snakemake(tmp_path, "-n", "--cores", "1", "-p")
    out = proc.stdout + proc.stderr
    jobs = planned_jobs(out)
    # targets: 2 archs x (dense + 2 tickets); references: 4 x resnet18 x (dense + 0.8 ticket)
    assert jobs["train_dense"] == 2 + 4 and jobs["train_ticket"] == 4 + 4
    assert jobs["prune_mask"] == 4 + 4 and jobs["reference_split"] == 1
    blocks = re.split(r"(?m)^(?=(?:local)?rule \w+:)", out)
    for k in range(4):
        mask = [b for b in blocks if b.startswith("rule prune_mask:")
                and f"ref-{k}/oneshot/sparsity-0.8/mask.pt" in b]
        assert len(mask) == 1
        assert f"resnet18/ref-{k}/dense/sparsity-0/model.pt" in mask[0]
        assert "seed-0" not in mask[0]  # never the target's dense network
        ticket = [b for b in blocks if b.startswith("rule train_ticket:")
                  and f"ref-{k}/oneshot/sparsity-0.8/model.pt" in b]
        assert f"references/ref-{k}/membership.parquet" in ticket[0]
        assert f"resnet18/ref-{k}/dense/sparsity-0/rewind.pt" in ticket[0]
    # only the target models in the reference grid get the reference inputs
    fits = [b for b in blocks if b.startswith("rule fit_attack:")]
    with_refs = [b for b in fits if "references/inclusion.parquet" in b]
    assert len(with_refs) == 2  # resnet18 at 0 and 0.8 (one job covers both sample sizes)
    assert all("resnet18/seed-0/oneshot/sparsity-0.5" not in b for b in with_refs)


def test_a_reference_half_spanning_both_cifar_pools_loads_in_row_order(tmp_path):
    """CIFAR: the pool is train-split members + test-split non-members, so a reference's
    training half spans both files; images are read from the pool each row names."""
    from conftest import write_tiny_cifar
    from lottery_mia.data import load_in_memory, pool_labels
    from lottery_mia.data import DataSpec, member_and_test_sets
    from lottery_mia.recipe import Recipe

    root = write_tiny_cifar(tmp_path / "cifar", n_train=40, n_test=20)
    labels = pool_labels("cifar10", root, key="datasets.c.root")
    target = make_membership_split(labels, "cifar10", members=None, nonmembers=None,
                                   scored_members=None, seed=0)
    inc = make_inclusion(target, 4, seed=3)
    table = reference_membership(target, inc, 2)
    mem = table[table["member"]]
    assert set(mem["pool"]) == {"train", "test"}
    path = tmp_path / "ref2.parquet"
    from lottery_mia.membership import write_membership

    write_membership(table, path)
    data = DataSpec("c", "cifar10", str(root), str(path))
    rec = Recipe.from_dict({"epochs": 1, "batch_size": 8, "lr": 0.1, "num_workers": 0})
    train_set, test_set = member_and_test_sets(data, rec, "cpu")
    assert len(train_set) == len(mem) and len(test_set) == len(table) - len(mem)
    _, ys = zip(*train_set.eval_batches(1000))
    assert (np.concatenate([y.numpy() for y in ys]) == mem["label"].to_numpy()).all()
    # the images themselves are the named pool's, in row order
    first = mem.iloc[0]
    x0, _ = load_in_memory("cifar10", root, first["pool"], np.array([first["pool_index"]]),
                           key="datasets.c.root")
    assert np.array_equal(train_set.x[0].cpu().numpy(), x0[0])


def test_reference_halves_from_plain_ids_cover_each_pool_sample_in_half_the_references():
    import numpy as np
    import pytest

    from lottery_mia.references import inclusion_from_ids

    members = np.arange(1000, 1100)
    held_out = np.arange(5000, 5300)
    inc = inclusion_from_ids(members, held_out, k=4, seed=0)
    assert set(inc["reference"]) == {0, 1, 2, 3}
    per_row = inc.groupby("sample_id")["included"].sum()
    pool = per_row[per_row > 0]
    assert (pool == 2).all()  # every pool sample IN for exactly half of the references
    assert set(members) <= set(pool.index)  # the target's members are all in the pool
    assert len(pool) == 200  # the members and as many non-members
    with pytest.raises(ValueError, match="both a member and a non-member"):
        inclusion_from_ids([1, 2], [2, 3], k=2, seed=0)
