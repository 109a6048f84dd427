"""lottery_mia.plan.limits: what the data allows, known while the DAG is built."""

from __future__ import annotations

import json

import pytest

from lottery_mia.attack_samples import same_class_pairs
from lottery_mia.config.sections import Dataset
from lottery_mia.datasets import dataset_source
from lottery_mia.membership import make_membership_split, write_membership
from lottery_mia.plan.limits import same_class_pairs_of


def test_digits_pairs_are_those_of_the_split_the_job_will_draw_and_are_remembered(tmp_path):
    ds = Dataset(source="digits", members=300, nonmembers=300, split_seed=4)
    pairs, where = same_class_pairs_of("digits", ds, tmp_path)
    table = make_membership_split(dataset_source("digits").pool_labels(None), "digits",
                                  members=300, nonmembers=300, scored_members=None, seed=4)
    assert pairs == same_class_pairs(table) and "labels of digits" in where
    cache = json.loads((tmp_path / "split-pairs.json").read_text())
    assert list(cache.values()) == [pairs]
    # a remembered number is used as it is (the cache is keyed by source and split)
    key = next(iter(cache))
    (tmp_path / "split-pairs.json").write_text(json.dumps({key: 7}))
    assert same_class_pairs_of("digits", ds, tmp_path)[0] == 7
    other = Dataset(source="digits", members=300, nonmembers=300, split_seed=5)
    assert same_class_pairs_of("digits", other, tmp_path)[0] != 7


def test_an_unreadable_cache_is_recomputed(tmp_path):
    (tmp_path / "split-pairs.json").write_text("{not json")
    ds = Dataset(source="digits", members=200, nonmembers=200)
    assert same_class_pairs_of("digits", ds, tmp_path)[0] > 0


def test_other_sources_read_their_membership_table_once_it_matches_the_config(
        tmp_path, monkeypatch):
    import numpy as np

    monkeypatch.chdir(tmp_path)
    ds = Dataset(source="cifar10", root=str(tmp_path), members=40, nonmembers=20)
    assert same_class_pairs_of("cifar10", ds) is None  # no table yet: the data check decides
    rng = np.random.default_rng(0)
    labels = {"train": rng.integers(0, 10, 50), "test": rng.integers(0, 10, 20)}
    table = make_membership_split(labels, "cifar10", members=40, nonmembers=20,
                                  scored_members=None, seed=0)
    from lottery_mia.layout import membership

    write_membership(table, membership("cifar10"))
    pairs, where = same_class_pairs_of("cifar10", ds)
    assert pairs == same_class_pairs(table) and where.endswith("membership.parquet")
    bigger = Dataset(source="cifar10", root=str(tmp_path), members=45, nonmembers=20)
    assert same_class_pairs_of("cifar10", bigger) is None  # another split's table


@pytest.mark.parametrize("content", [b"", b"not parquet"])
def test_an_unreadable_membership_table_is_left_to_the_jobs(tmp_path, monkeypatch, content):
    from pathlib import Path

    from lottery_mia.layout import membership

    monkeypatch.chdir(tmp_path)
    path = Path(membership("cifar10"))
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    ds = Dataset(source="cifar10", root=str(tmp_path), members=40, nonmembers=20)
    assert same_class_pairs_of("cifar10", ds) is None
