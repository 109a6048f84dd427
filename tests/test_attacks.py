import json

import numpy as np
import pandas as pd
import pytest

from lottery_mia.attack_samples import make_attack_sample
from lottery_mia.attacks import ATTACKS
from lottery_mia.jobs.attack import run_attacks, transfer_attack
from lottery_mia.attacks.thresholds import METRIC_SCORES
from lottery_mia.confidences import ConfidenceTable, write_confidences


def membership(n_mem=600, n_non=600):
    return pd.DataFrame({
        "sample_id": np.arange(n_mem + n_non), "pool": "all",
        "pool_index": np.arange(n_mem + n_non), "label": np.arange(n_mem + n_non) % 10,
        "member": np.r_[np.ones(n_mem, bool), np.zeros(n_non, bool)], "scored": True,
    })



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
                                        "method": "dense", "sparsity": 0.0})


ALL = sorted(k for k, v in ATTACKS.items()
             if not (v.needs_references or v.needs_parent or v.needs_inputs))  # a table
FAST = {"mlp": {"hidden_layer_sizes": [32], "max_iter": 500},
        "random_forest": {"n_estimators": 50}, "gradient_boosting": {"max_iter": 30}}


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
    b.metadata = {"dataset": "synthetic", "arch": "resnet50", "method": "oneshot",
                  "sparsity": 0.5}
    write_confidences(b, tmp_path / "b.parquet")
    out = transfer_attack(source_confidences=tmp_path / "a.parquet",
                          sample_path=tmp_path / "sample.parquet", attack="mlp",
                          settings=FAST["mlp"], features="softmax", seed=0, n_bootstrap=300,
                          targets=[{"arch": "resnet18", "method": "dense", "sparsity": 0.0},
                                   {"arch": "resnet50", "method": "oneshot",
                                    "sparsity": 0.5}],
                          target_paths=[tmp_path / "a.parquet", tmp_path / "b.parquet"],
                          output=tmp_path / "t.csv")
    diag = out[(out.target_arch == "resnet18")].iloc[0]
    assert diag.accuracy == pytest.approx(res["mlp"]["accuracy"])
    assert diag.auc == pytest.approx(res["mlp"]["auc"])
    assert diag.accuracy_ci_low == pytest.approx(res["mlp"]["accuracy_ci_low"])
    assert diag.n_members + diag.n_nonmembers == 400  # attack_test fold only
    off = out[(out.target_arch == "resnet50")].iloc[0]
    assert off.accuracy < diag.accuracy



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
