"""The verdict tables (lottery_mia.reporting.verdicts) on test_tables.py's synthetic run:
tickets against controls and the first ticket, a planted difference found and none where
none is planted, a threshold per replicate required."""

from __future__ import annotations

import numpy as np
import pytest

from lottery_mia.reporting.verdicts import method_pairs, method_verdicts
from test_tables import KINDS, MARGINS, run  # noqa: F401  (run: the module's fixture)


def _pick(mv, sparsity, method, versus, metric="auc"):
    hit = mv[np.isclose(mv["sparsity"], sparsity) & (mv["method"] == method)
             & (mv["versus"] == versus) & (mv["metric"] == metric)]
    assert len(hit) == 1, hit
    return hit.iloc[0]


def test_method_pairs_put_tickets_against_controls_and_the_first_ticket():
    kinds = {"oneshot": "ticket", "imp": "ticket", "random_reinit": "control",
             "snip": "control"}
    assert method_pairs(["imp", "snip", "oneshot", "random_reinit"], kinds) == [
        ("oneshot", "random_reinit"), ("oneshot", "snip"), ("imp", "random_reinit"),
        ("imp", "snip"), ("imp", "oneshot")]
    assert method_pairs(["oneshot"], kinds) == []


def test_method_verdicts_find_the_planted_difference_and_none_elsewhere(run):
    mv = method_verdicts(run["attacks"], run["training"], run["groups"], KINDS, ["mlp"],
                         n_bootstrap=300, seed=0, margins=MARGINS)
    assert set(zip(mv["sparsity"], mv["method"], mv["versus"])) == {
        (0.5, "oneshot", "random_reinit"), (0.8, "oneshot", "random_reinit"),
        (0.8, "imp", "random_reinit"), (0.8, "imp", "oneshot")}
    for method in ("oneshot", "imp"):
        for metric in ("auc", "balanced_accuracy"):
            r = _pick(mv, 0.8, method, "random_reinit", metric)
            assert r["diff"] > 0.2 and r["diff_ci_low"] > 0 and r["verdict"] == "leaks_more"
            assert r["method_value"] - r["versus_value"] == pytest.approx(r["diff"])
            assert r["p_holm"] >= r["p_value"]  # adjusted over the table's 8 comparisons
    for sparsity, method, versus in ((0.5, "oneshot", "random_reinit"), (0.8, "imp", "oneshot")):
        r = _pick(mv, sparsity, method, versus)
        assert r["diff_ci_low"] < 0 < r["diff_ci_high"]
        assert r["verdict"] in ("inconclusive", "equivalent")
    r = _pick(mv, 0.8, "imp", "random_reinit")
    assert r["achieved_sparsity_method"] == pytest.approx(0.833)
    assert r["achieved_sparsity_versus"] == pytest.approx(0.801)
    assert r["test_acc_method"] == pytest.approx(0.94)
    assert r["test_acc_versus"] == pytest.approx(0.86)
    # three seeds: the interval holds the seeds and the rows
    assert r["n_seeds"] == 3 and r["scope"] == "seeds and rows"
    assert r["sentence"].startswith("digits, n=400, sparsity 0.8 (imp achieved sparsity 0.833")
    assert "random_reinit (control)" in r["sentence"] and "95% CI +" in r["sentence"]
    assert "leaks more than random_reinit" in r["sentence"]
    assert "over 3 training seeds and the attack rows" in r["sentence"]
    assert "test accuracy 0.940 vs 0.860" in r["sentence"]


def test_method_verdicts_need_a_threshold_per_replicate(run):
    attacks = run["attacks"]
    drop = (attacks["method"] == "imp") & (attacks["replicate"] == "1")
    with pytest.raises(ValueError, match="2 replicate rows .* for 3 score files"):
        method_verdicts(attacks[~drop], run["training"], run["groups"], KINDS, ["mlp"],
                        n_bootstrap=20, seed=0, margins=MARGINS)
