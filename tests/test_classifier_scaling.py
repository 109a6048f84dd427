"""The classifier attacks at scale (lottery_mia.attacks.classifiers): the SVM above its
exact-size cap is a recorded kernel approximation that finds what the exact one finds,
gradient boosting is the histogram-based estimator, the MLP stops early on large
attack-train sets, and what was fitted reaches the attack's result row."""

from __future__ import annotations

import numpy as np
import pytest

from lottery_mia.attack_samples import make_attack_sample
from lottery_mia.attacks import AttackData, evaluate_attacks, get_attack
from test_attacks import membership, synthetic_table


def _data(n=1200, shift=2.0, seed=0) -> AttackData:
    table = synthetic_table(separable=True, n_mem=n // 2, n_non=n // 2, shift=shift, seed=seed)
    sample = make_attack_sample(membership(n // 2, n // 2), n, seed=1)
    return AttackData(table.rows(sample["sample_id"].to_numpy()), sample)


def _auc(data, out):
    from lottery_mia.stats.metrics import attack_metrics

    return attack_metrics(data.is_member[data.test], out.score[data.test])["auc"]


def test_svm_above_its_cap_is_an_approximation_that_finds_what_the_exact_one_finds():
    data = _data(shift=2.5)  # 600 attack-train rows; a clear signal, not a saturated one
    exact = get_attack("svm").factory({"exact_max_rows": 600}, 0).fit_score(data)
    approx = get_attack("svm").factory({"exact_max_rows": 599, "approx_components": 300},
                                       0).fit_score(data)
    assert exact.info["exact"] and exact.info["estimator"] == "SVC"
    assert not approx.info["exact"]
    assert approx.info["estimator"] == "Nystroem(rbf, 300 components)+LinearSVC"
    assert exact.info["fit_rows"] == approx.info["fit_rows"] == int(data.train.sum())
    a_exact, a_approx = _auc(data, exact), _auc(data, approx)
    assert 0.7 < a_exact < 0.97, a_exact
    assert abs(a_approx - a_exact) < 0.02, (a_exact, a_approx)
    assert approx.threshold == 0.0  # still the decision function, threshold 0
    linear = get_attack("svm").factory({"kernel": "linear", "exact_max_rows": 10}, 0)
    assert linear.fit_score(data).info["estimator"] == "LinearSVC"


def test_what_each_classifier_fitted_reaches_its_result_row():
    data = _data(n=800)
    settings = {"gradient_boosting": {"max_iter": 20},
                "mlp": {"hidden_layer_sizes": [16], "max_iter": 300,
                        "early_stopping_min_rows": 100},
                "svm": {"exact_max_rows": 100, "approx_components": 50}}
    rows, _ = evaluate_attacks(data, ["gradient_boosting", "mlp", "svm", "loss"], settings,
                               seed=0, n_bootstrap=200)
    by = {r["attack"]: r for r in rows}
    assert by["gradient_boosting"]["estimator"] == "HistGradientBoostingClassifier"
    assert by["mlp"]["early_stopping"] is True and 0 <= by["mlp"]["validation_score"] <= 1
    assert by["mlp"]["n_iter"] < 300
    assert by["svm"]["exact"] is False and by["svm"]["estimator"].startswith("Nystroem")
    assert "estimator" not in by["loss"]  # threshold attacks fit no estimator
    small = {"mlp": {"hidden_layer_sizes": [16], "max_iter": 50}}  # 400 rows < 5000
    rows, _ = evaluate_attacks(data, ["mlp"], small, seed=0, n_bootstrap=200)
    assert rows[0]["early_stopping"] is False and "validation_score" not in rows[0]


@pytest.mark.parametrize("settings, words", [
    ({"exact_max_rows": 0}, ["attack.svm.exact_max_rows", ">= 1"]),
    ({"approx_components": None}, ["attack.svm.approx_components"]),
    ({"exact_max_rows": True}, ["attack.svm.exact_max_rows"]),
])
def test_the_svms_own_settings_are_checked(settings, words):
    with pytest.raises(ValueError) as err:
        get_attack("svm").factory(settings, 0)
    for w in words:
        assert w in str(err.value)
    get_attack("svm").factory({"exact_max_rows": None}, 0)  # null: always exact


def test_an_mlp_below_its_early_stopping_size_is_the_mlp_without_early_stopping():
    """Below ``early_stopping_min_rows`` the MLP is exactly ``early_stopping: false`` with
    scikit-learn's own ``n_iter_no_change`` (the training-loss plateau): the same scores;
    at or above it the validation patience is ``early_stopping_patience``."""
    data = _data(n=400)
    base = {"hidden_layer_sizes": [16], "max_iter": 200}
    small = get_attack("mlp").factory({**base, "early_stopping": True}, 0)
    plain = get_attack("mlp").factory({**base, "early_stopping": False}, 0)
    a, b = small.fit_score(data), plain.fit_score(data)
    assert a.info["early_stopping"] is False
    np.testing.assert_array_equal(a.score, b.score)
    assert small.model.n_iter_no_change == plain.model.n_iter_no_change == 10
    big = get_attack("mlp").factory({**base, "early_stopping": True,
                                     "early_stopping_min_rows": 1,
                                     "early_stopping_patience": 7}, 0)
    out = big.fit_score(data)
    assert out.info["early_stopping"] is True and big.model.n_iter_no_change == 7
    with pytest.raises(ValueError, match="attack.mlp.early_stopping_patience"):
        get_attack("mlp").factory({"early_stopping_patience": 0}, 0)
