import json

import numpy as np
import pandas as pd
import pytest

from lottery_mia.attack_samples import make_attack_sample
from lottery_mia.attacks import ATTACKS, run_attacks, transfer_attack
from lottery_mia.attacks.thresholds import METRIC_SCORES
from lottery_mia.confidences import ConfidenceTable, read_confidences, write_confidences
from lottery_mia.metrics import (attack_metrics, best_threshold, paired_difference,
                                 roc_points, tpr_at_fpr)


def membership(n_mem=600, n_non=600):
    return pd.DataFrame({
        "sample_id": np.arange(n_mem + n_non), "pool": "all",
        "pool_index": np.arange(n_mem + n_non), "label": np.arange(n_mem + n_non) % 10,
        "member": np.r_[np.ones(n_mem, bool), np.zeros(n_non, bool)], "scored": True,
    })


@pytest.mark.parametrize("n", [0, -4, 7, 1202])
def test_impossible_sample_sizes_are_refused(n):
    with pytest.raises(ValueError, match="sample size|attack.sample_sizes"):
        make_attack_sample(membership(), n, seed=0)


def synthetic_table(separable: bool, n_mem=600, n_non=600, classes=10, seed=0, shift=8.0):
    rng = np.random.default_rng(seed)
    n = n_mem + n_non
    labels = np.arange(n) % classes
    member = np.r_[np.ones(n_mem, bool), np.zeros(n_non, bool)]
    logits = rng.normal(0, 1, (n, classes))
    if separable:  # members: confident on the true class; non-members: spread out
        logits[np.arange(n), labels] += np.where(member, shift, 0.0)
    else:  # identical distributions for members and non-members
        logits[np.arange(n), labels] += 2.0
    return ConfidenceTable.from_logits(np.arange(n), labels, member, logits,
                                       {"dataset": "synthetic", "arch": "resnet18",
                                        "sparsity": 0.0})


ALL = sorted(k for k, v in ATTACKS.items() if not v.needs_references)
FAST = {"mlp": {"hidden_layer_sizes": [32], "max_iter": 500},
        "random_forest": {"n_estimators": 50}, "gradient_boosting": {"n_estimators": 30}}


def run_attack(tmp_path, table, n=800, name="a", attacks=ALL):
    write_confidences(table, tmp_path / f"{name}.parquet")
    m = membership(int(table.member.sum()), int((~table.member).sum()))
    sample = make_attack_sample(m, n, seed=1)
    sample.to_parquet(tmp_path / "sample.parquet")
    res = run_attacks(confidences_path=tmp_path / f"{name}.parquet",
                      sample_path=tmp_path / "sample.parquet", attacks=attacks,
                      settings=FAST, features="softmax", seed=0, n_bootstrap=300,
                      out_metrics=tmp_path / f"{name}.json",
                      out_scores=tmp_path / f"{name}_s.parquet")
    return {r["attack"]: r for r in res["attacks"]}


def test_every_attack_finds_separable_members(tmp_path):
    res = run_attack(tmp_path, synthetic_table(separable=True))
    assert set(res) == set(ALL)
    for name, r in res.items():
        # a linear model on the raw softmax cannot express "confident on the true class,
        # whichever class it is": weaker, but still above chance
        assert r["auc"] > (0.55 if name == "logistic_regression" else 0.95), name
        assert r["accuracy_ci_low"] > 0.5 and r["verdict_auc"] == "above chance", name
    # the loss attack must score members *higher* (sign convention)
    assert res["loss"]["auc"] > 0.95 and res["mlp"]["precision"] > 0.9
    scores = pd.read_parquet(tmp_path / "a_s.parquet")
    assert set(scores.fold) == {"attack_train", "attack_test"}
    assert {f"score_{a}" for a in ALL} <= set(scores.columns)
    saved = json.loads((tmp_path / "a.json").read_text())
    assert [r["attack"] for r in saved["attacks"]] == ALL
    assert not list(tmp_path.glob("*.pkl"))  # no fitted model is pickled


def test_attacks_on_identical_distributions_are_reported_at_chance(tmp_path):
    res = run_attack(tmp_path, synthetic_table(separable=False), n=1200,
                     attacks=["mlp", "loss", "logistic_regression"])
    for name, r in res.items():
        assert r["auc_ci_low"] <= 0.5 + 0.02 and r["auc_ci_high"] >= 0.5 - 0.02, name
        assert abs(r["advantage"]) < 0.1, name


def test_transfer_diagonal_equals_the_attack_and_uses_only_attack_test(tmp_path):
    a = synthetic_table(separable=True, seed=0, shift=2.0)
    res = run_attack(tmp_path, a, attacks=["mlp"])
    b = synthetic_table(separable=False, seed=1)
    b.metadata = {"dataset": "synthetic", "arch": "resnet50", "sparsity": 0.5}
    write_confidences(b, tmp_path / "b.parquet")
    out = transfer_attack(source_confidences=tmp_path / "a.parquet",
                          sample_path=tmp_path / "sample.parquet", attack="mlp",
                          settings=FAST["mlp"], features="softmax", seed=0, n_bootstrap=300,
                          targets=[{"arch": "resnet18", "sparsity": 0.0},
                                   {"arch": "resnet50", "sparsity": 0.5}],
                          target_paths=[tmp_path / "a.parquet", tmp_path / "b.parquet"],
                          output=tmp_path / "t.csv")
    diag = out[(out.target_arch == "resnet18")].iloc[0]
    assert diag.accuracy == pytest.approx(res["mlp"]["accuracy"])
    assert diag.auc == pytest.approx(res["mlp"]["auc"])
    assert diag.accuracy_ci_low == pytest.approx(res["mlp"]["accuracy_ci_low"])
    assert diag.n_members + diag.n_nonmembers == 400  # attack_test fold only
    off = out[(out.target_arch == "resnet50")].iloc[0]
    assert off.accuracy < diag.accuracy


def test_confidence_table_roundtrip_keeps_logits_and_unsaturated_loss(tmp_path):
    t = synthetic_table(separable=True, shift=60.0)  # p_y rounds to 1.0 in float32
    write_confidences(t, tmp_path / "c.parquet")
    back = read_confidences(tmp_path / "c.parquet")
    np.testing.assert_array_equal(back.logits, t.logits)
    np.testing.assert_array_equal(back.member, t.member)
    assert back.metadata["arch"] == "resnet18"
    assert (back.softmax.max(1) == 1.0).mean() > 0.4  # the float32 softmax saturates ...
    assert (back.loss[back.member] > 0).all()  # ... the loss from the logits does not
    import pyarrow.parquet as pq

    schema = pq.read_schema(tmp_path / "c.parquet")
    assert str(schema.field("logits").type) == "fixed_size_list<element: float>[10]"
    rows = back.rows(np.array([5, 1]))
    assert list(rows.sample_id) == [5, 1]


def test_scaled_logit_is_stable_and_exact():
    logits = np.array([[2.0, 0.5, -1.0], [80.0, 0.0, 0.0]])
    t = ConfidenceTable.from_logits([0, 1], [0, 0], [True, False], logits)
    p = np.exp(logits[0]) / np.exp(logits[0]).sum()
    assert t.scaled_logit()[0] == pytest.approx(np.log(p[0] / (1 - p[0])))
    assert t.scaled_logit()[1] == pytest.approx(80.0 - np.log(2.0))  # no overflow to inf


def test_metric_definitions():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.7, 0.2, 0.6, 0.3, 0.1, 0.05])
    m = attack_metrics(y, s)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["precision"] == pytest.approx(3 / 4) and m["recall"] == pytest.approx(3 / 4)
    assert m["auc"] == pytest.approx(14 / 16)
    # advantage at the chosen threshold: TPR 3/4 - FPR 1/4; the test-fold optimum is apart
    assert m["advantage"] == pytest.approx(0.5)
    assert m["advantage"] == pytest.approx(2 * m["balanced_accuracy"] - 1)
    assert m["max_advantage_test"] == pytest.approx(0.75)  # TPR 3/4 at FPR 0
    assert m["tpr_at_fpr_0.01"] == pytest.approx(0.75)  # largest FPR <= 1%: FPR 0, TPR 3/4
    flipped = attack_metrics(1 - y, s)  # members are the positive class
    assert flipped["auc"] == pytest.approx(1 - m["auc"])
    assert tpr_at_fpr(np.array([0.0, 0.5, 1.0]), np.array([0.0, 0.9, 1.0]), 0.4) == 0.0
    thr = best_threshold(y, s)
    assert ((s >= thr) == y).mean() == pytest.approx(7 / 8)  # best cut: top three


def test_best_threshold_never_cuts_inside_tied_scores():
    # a block of 4 tied scores (2 members, 2 non-members) above 2 members and 6 non-members
    y = np.array([1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0])
    s = np.array([5, 5, 5, 5, 3, 3, 1, 1, 1, 1, 1, 1], dtype=float)
    thr = best_threshold(y, s)
    acc = ((s >= thr) == y).mean()
    best = max(((s >= v) == y).mean() for v in np.r_[np.unique(s), np.inf])
    assert acc == pytest.approx(best) == pytest.approx(10 / 12)
    assert not np.any(s == thr) or thr == s.min()


def test_low_fpr_uses_every_roc_point():
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(500, bool), np.zeros(500, bool)]
    s = np.r_[rng.normal(1, 1, 500), rng.normal(0, 1, 500)]
    fpr, tpr = roc_points(y, s)
    assert len(fpr) == len(np.unique(s)) + 1  # no point dropped
    m = attack_metrics(y, s)
    assert m["tpr_at_fpr_0.01"] == pytest.approx(tpr_at_fpr(fpr, tpr, 0.01))
    assert m["tpr_at_fpr_0.001"] == pytest.approx(tpr_at_fpr(fpr, tpr, 0.001))


def test_paired_difference_sees_a_real_gap_and_no_gap():
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(400, bool), np.zeros(400, bool)]
    base = np.r_[rng.normal(0.3, 1, 400), rng.normal(0, 1, 400)]
    stronger = base + np.r_[np.full(400, 0.6), np.zeros(400)]
    d = paired_difference(y, base, 0.15, stronger, 0.45, n_boot=500)
    assert d["auc"]["difference"] > 0 and d["auc"]["excludes_zero"]
    same = paired_difference(y, base, 0.15, base, 0.15, n_boot=500)
    assert same["auc"]["difference"] == 0 and not same["auc"]["excludes_zero"]


def test_metric_scores_rank_confident_members_higher():
    t = synthetic_table(separable=True)
    for name, fn in METRIC_SCORES.items():
        score = fn(t)
        assert score[t.member].mean() > score[~t.member].mean(), name


def test_settings_known_without_importing_scikit_learn_exist_in_the_installed_release():
    from lottery_mia.attacks.classifiers import COMMON_SETTINGS, ESTIMATORS, estimator_settings

    assert set(COMMON_SETTINGS) == set(ESTIMATORS)
    for name, known in COMMON_SETTINGS.items():
        assert known <= estimator_settings(name), name


def test_unknown_attack_settings_are_named():
    from lottery_mia.attacks import check_attack_config

    problems = check_attack_config(["mlp", "svm"], {"mlp": {"hiden_layer_sizes": [3]},
                                                    "svm": {"C": 2.0}})
    assert len(problems) == 1 and "attack.mlp" in problems[0]
    assert "hiden_layer_sizes" in problems[0] and "hidden_layer_sizes" in problems[0]
