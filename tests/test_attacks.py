import numpy as np
import pandas as pd
import pytest

from lottery_mia.attacks import (fit_attack, make_attack_sample, metric_scores,
                                 transfer_attack)
from lottery_mia.confidences import ConfidenceTable, read_confidences, write_confidences
from lottery_mia.metrics import attack_metrics, best_threshold, tpr_at_fpr


def membership(n_mem=600, n_non=600):
    return pd.DataFrame({
        "sample_id": np.arange(n_mem + n_non), "pool": "all",
        "pool_index": np.arange(n_mem + n_non), "label": np.arange(n_mem + n_non) % 10,
        "member": np.r_[np.ones(n_mem, bool), np.zeros(n_non, bool)], "scored": True,
    })


def test_attack_sample_is_balanced_with_disjoint_folds():
    s = make_attack_sample(membership(), 400, seed=0)
    assert len(s) == 400 and s.member.sum() == 200
    train, test = s[s.fold == "attack_train"], s[s.fold == "attack_test"]
    assert not set(train.sample_id) & set(test.sample_id)
    assert train.member.sum() * 2 == len(train) and test.member.sum() * 2 == len(test)
    assert len(train) == len(test) == 200
    assert s.sample_id.is_unique
    pd.testing.assert_frame_equal(s, make_attack_sample(membership(), 400, seed=0))
    m = membership()
    assert set(s[s.member].sample_id) <= set(m[m.member].sample_id)
    assert set(s[~s.member].sample_id) <= set(m[~m.member].sample_id)


@pytest.mark.parametrize("n", [0, -4, 7, 1202])
def test_impossible_sample_sizes_are_refused(n):
    with pytest.raises(ValueError, match="sample size|attack.sample_sizes"):
        make_attack_sample(membership(), n, seed=0)


def synthetic_table(separable: bool, n_mem=600, n_non=600, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    n = n_mem + n_non
    labels = np.arange(n) % classes
    member = np.r_[np.ones(n_mem, bool), np.zeros(n_non, bool)]
    logits = rng.normal(0, 1, (n, classes))
    if separable:  # members: confident on the true class; non-members: spread out
        logits[np.arange(n), labels] += np.where(member, 8.0, 0.0)
    else:  # identical distributions for members and non-members
        logits[np.arange(n), labels] += 2.0
    p = np.exp(logits - logits.max(1, keepdims=True))
    p = (p / p.sum(1, keepdims=True)).astype(np.float32)
    loss = -np.log(p[np.arange(n), labels]).astype(np.float32)
    return ConfidenceTable(np.arange(n), labels, member, p.argmax(1), loss, p,
                           {"dataset": "synthetic", "arch": "resnet18", "sparsity": 0.0})


def run_attack(tmp_path, table, n=800, name="a"):
    write_confidences(table, tmp_path / f"{name}.parquet")
    m = membership(int(table.member.sum()), int((~table.member).sum()))
    sample = make_attack_sample(m, n, seed=1)
    sample.to_parquet(tmp_path / "sample.parquet")
    return fit_attack(confidences_path=tmp_path / f"{name}.parquet",
                      sample_path=tmp_path / "sample.parquet",
                      mlp={"hidden_layer_sizes": [32], "max_iter": 500}, features="softmax",
                      seed=0, out_model=tmp_path / f"{name}.pkl",
                      out_metrics=tmp_path / f"{name}.json", out_scores=tmp_path / f"{name}_s.parquet")


def test_attack_on_separable_members_is_near_perfect(tmp_path):
    res = run_attack(tmp_path, synthetic_table(separable=True))
    assert res["accuracy"] > 0.95 and res["auc"] > 0.98 and res["precision"] > 0.9
    # the loss baseline must score members *higher* (sign convention)
    assert res["baselines"]["loss"]["auc"] > 0.95
    assert res["baselines"]["modified_entropy"]["auc"] > 0.95
    scores = pd.read_parquet(tmp_path / "a_s.parquet")
    assert set(scores.fold) == {"attack_train", "attack_test"}


def test_attack_on_identical_distributions_is_near_chance(tmp_path):
    res = run_attack(tmp_path, synthetic_table(separable=False), n=1200)
    assert abs(res["accuracy"] - 0.5) < 0.07
    assert abs(res["auc"] - 0.5) < 0.07
    assert abs(res["baselines"]["loss"]["accuracy"] - 0.5) < 0.07


def test_transfer_diagonal_equals_the_attack_and_uses_only_attack_test(tmp_path):
    a = synthetic_table(separable=True, seed=0)
    res = run_attack(tmp_path, a)
    b = synthetic_table(separable=False, seed=1)
    b.metadata = {"dataset": "synthetic", "arch": "resnet50", "sparsity": 0.5}
    write_confidences(b, tmp_path / "b.parquet")
    out = transfer_attack(attack_model_path=tmp_path / "a.pkl",
                          sample_path=tmp_path / "sample.parquet",
                          targets=[{"arch": "resnet18", "sparsity": 0.0},
                                   {"arch": "resnet50", "sparsity": 0.5}],
                          target_paths=[tmp_path / "a.parquet", tmp_path / "b.parquet"],
                          output=tmp_path / "t.csv")
    diag = out[(out.target_arch == "resnet18")].iloc[0]
    assert diag.accuracy == pytest.approx(res["accuracy"])
    assert diag.auc == pytest.approx(res["auc"])
    assert diag.n_members + diag.n_nonmembers == 400  # attack_test fold only
    off = out[(out.target_arch == "resnet50")].iloc[0]
    assert off.accuracy < diag.accuracy


def test_confidence_table_roundtrip(tmp_path):
    t = synthetic_table(separable=True)
    write_confidences(t, tmp_path / "c.parquet")
    back = read_confidences(tmp_path / "c.parquet")
    np.testing.assert_array_equal(back.softmax, t.softmax)
    np.testing.assert_array_equal(back.member, t.member)
    assert back.metadata["arch"] == "resnet18"
    import pyarrow.parquet as pq

    schema = pq.read_schema(tmp_path / "c.parquet")
    assert str(schema.field("softmax").type) == "fixed_size_list<element: float>[10]"
    rows = back.rows(np.array([5, 1]))
    assert list(rows.sample_id) == [5, 1]


def test_metric_definitions():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.7, 0.2, 0.6, 0.3, 0.1, 0.05])
    m = attack_metrics(y, s)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["precision"] == pytest.approx(3 / 4) and m["recall"] == pytest.approx(3 / 4)
    assert m["auc"] == pytest.approx(14 / 16)
    assert m["advantage"] == pytest.approx(0.75)  # TPR 3/4 at FPR 0
    assert m["tpr_at_fpr_0.01"] == pytest.approx(0.75)  # largest FPR <= 1%: FPR 0, TPR 3/4
    flipped = attack_metrics(1 - y, s)  # members are the positive class
    assert flipped["auc"] == pytest.approx(1 - m["auc"])
    assert tpr_at_fpr(np.array([0.0, 0.5, 1.0]), np.array([0.0, 0.9, 1.0]), 0.4) == 0.0
    thr = best_threshold(y, s)
    assert ((s >= thr) == y).mean() == pytest.approx(7 / 8)  # best cut: top three


def test_metric_scores_rank_confident_members_higher():
    t = synthetic_table(separable=True)
    for name, score in metric_scores(t).items():
        assert score[t.member].mean() > score[~t.member].mean(), name
