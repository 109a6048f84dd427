"""Attacks are calibrated: with nothing to find they score 0.5, and the intervals cover.

(Attacks that need reference models have their own null test beside their other tests.)

The null-calibration test draws member and non-member confidences from one distribution
(label-carrying, near-one-hot vectors, as a well-trained classifier gives) on a digits-like
membership split, at a near-exhaustive attack sample size, and averages each attack's
accuracy and AUC over many seeds: any systematic bias of the sampler or of an attack shows up
as a mean away from 0.5. A sampler whose folds are not class-stratified fails it (checked below).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits

from lottery_mia.attack_samples import make_attack_sample
from lottery_mia.attacks import ATTACKS, AttackData, get_attack
from lottery_mia.confidences import ConfidenceTable
from lottery_mia.membership import make_membership_split
from lottery_mia.stats.resampling import bootstrap_metrics

SEEDS = 50
N = 1600  # of at most ~1780: the folds are near-complements of the pool
LIGHT = {  # settings that keep 50 fits of each classifier quick
    "mlp": {"hidden_layer_sizes": [64], "max_iter": 200},
    "svm": {"C": 1.0},
    "random_forest": {"n_estimators": 40},
    "gradient_boosting": {"max_iter": 30},
    "logistic_regression": {},
}


@pytest.fixture(scope="module")
def digits_membership():
    return make_membership_split({"all": load_digits().target}, "digits", members=None,
                                 nonmembers=None, scored_members=None, seed=0)


def null_table(membership: pd.DataFrame, seed: int) -> ConfidenceTable:
    """Confidences that do not depend on membership: same law for members and non-members."""
    rng = np.random.default_rng(10_000 + seed)
    lab = membership["label"].to_numpy()
    logits = rng.normal(0.0, 1.0, (len(lab), 10))
    logits[np.arange(len(lab)), lab] += 6.0
    return ConfidenceTable.from_logits(membership["sample_id"], lab, membership["member"],
                                       logits)


def mean_null_accuracy(membership, attack: str, sampler, seeds: int = SEEDS,
                       settings: dict | None = None) -> float:
    return null_means(membership, attack, sampler, seeds, settings)[0]


def null_means(membership, attack: str, sampler, seeds: int = SEEDS,
               settings: dict | None = None) -> tuple[float, float]:
    """Mean attack-test accuracy and AUC of ``attack`` over ``seeds`` null experiments."""
    from threadpoolctl import threadpool_limits

    # one OpenMP thread, as in a fit-attack job (Snakemake sets OMP_NUM_THREADS to the job's
    # threads): histogram gradient boosting's threads spin for ages on a loaded machine
    with threadpool_limits(1, user_api="openmp"):
        runs = _null_runs(membership, attack, sampler, seeds, settings)
    return float(np.mean([a for a, _ in runs])), float(np.mean([u for _, u in runs]))


def _null_runs(membership, attack, sampler, seeds, settings) -> list[tuple[float, float]]:
    from lottery_mia.stats.metrics import attack_metrics

    runs = []
    for seed in range(seeds):
        sample = sampler(membership, N, seed)
        data = AttackData(null_table(membership, seed).rows(sample["sample_id"].to_numpy()),
                          sample)
        out = get_attack(attack).factory(settings or LIGHT.get(attack), seed).fit_score(data)
        y = data.is_member[data.test]
        runs.append((((out.score[data.test] >= out.threshold) == y).mean(),
                     attack_metrics(y, out.score[data.test])["auc"]))
    return runs


# The attacks of one table alone; the reference, pair and quantile attacks have null tests
# at their own geometry (test_reference_geometry, test_pair_attacks, test_quantile_attack).
ONE_TABLE = sorted(k for k, v in ATTACKS.items()
                   if not (v.needs_references or v.needs_parent or v.needs_inputs))


@pytest.mark.parametrize("attack", ONE_TABLE)
def test_every_attack_scores_chance_when_there_is_nothing_to_find_null(digits_membership,
                                                                        attack):
    acc, auc = null_means(digits_membership, attack, make_attack_sample)
    assert abs(acc - 0.5) <= 0.01, f"{attack}: mean null accuracy {acc:.4f}"
    assert abs(auc - 0.5) <= 0.01, f"{attack}: mean null AUC {auc:.4f}"


VARIANTS = {  # the other way each classifier may fit at scale, forced at this size
    "svm": ({"C": 1.0, "exact_max_rows": 200, "approx_components": 100},
            lambda a: not a.exact and a.estimator.startswith("Nystroem")),
    "mlp": ({**LIGHT["mlp"], "early_stopping_min_rows": None},
            lambda a: a.model.early_stopping),
}


@pytest.mark.parametrize("attack", sorted(VARIANTS))
def test_attacks_as_fitted_at_scale_score_chance_when_there_is_nothing_to_find_null(
        digits_membership, attack):
    """Above ``exact_max_rows`` the SVM is a Nystroem approximation + a linear SVM, and from
    ``early_stopping_min_rows`` the MLP stops early on a validation split: both must be as
    unbiased as the small-sample fits (800 attack-train rows here)."""
    from lottery_mia.attacks.classifiers import ClassifierAttack

    settings, used = VARIANTS[attack]
    probe = ClassifierAttack(attack, settings, 0)
    probe.fit(np.random.default_rng(0).random((300, 10)), np.arange(300) % 2)
    assert used(probe), attack
    acc, auc = null_means(digits_membership, attack, make_attack_sample, settings=settings)
    assert abs(acc - 0.5) <= 0.01, f"{attack} at scale: mean null accuracy {acc:.4f}"
    assert abs(auc - 0.5) <= 0.01, f"{attack} at scale: mean null AUC {auc:.4f}"


def unstratified_sampler(membership, n, seed):
    """The sampler before stratification: members and non-members drawn without regard to
    class, each half cut into the two folds."""
    scored = membership[membership["scored"]]
    rng = np.random.default_rng(seed)
    half, frames = n // 2, []
    for is_member in (True, False):
        pool = scored[scored["member"] == is_member]
        chosen = pool.iloc[rng.choice(len(pool), size=half, replace=False)]
        fold = ["attack_train"] * (half - half // 2) + ["attack_test"] * (half // 2)
        frames.append(pd.DataFrame({"sample_id": chosen["sample_id"].to_numpy(),
                                    "label": chosen["label"].to_numpy(),
                                    "member": is_member, "fold": fold}))
    return pd.concat(frames, ignore_index=True)


def test_the_null_test_catches_an_unstratified_sampler(digits_membership):
    acc = mean_null_accuracy(digits_membership, "mlp", unstratified_sampler, seeds=30)
    assert acc < 0.49, f"the null test would not catch the old sampler (mean {acc:.4f})"


# --------------------------------------------------------------------------- the sampler
def test_folds_are_class_stratified_disjoint_and_model_independent(digits_membership):
    s = make_attack_sample(digits_membership, N, seed=3)
    assert len(s) == N and s["member"].sum() == N // 2
    assert s["sample_id"].is_unique
    for fold in ("attack_train", "attack_test"):
        part = s[s["fold"] == fold]
        counts = part.groupby(["label", "member"]).size().unstack(fill_value=0)
        assert (counts[True] == counts[False]).all(), fold
    assert (s["fold"] == "attack_test").sum() == N // 2
    truth = digits_membership.set_index("sample_id")
    assert (truth.loc[s["sample_id"], "label"].to_numpy() == s["label"].to_numpy()).all()
    assert (truth.loc[s["sample_id"], "member"].to_numpy() == s["member"].to_numpy()).all()
    # the same rows whatever model is attacked: a function of (membership, n, seed) only
    pd.testing.assert_frame_equal(s, make_attack_sample(digits_membership, N, seed=3))
    assert not s.equals(make_attack_sample(digits_membership, N, seed=4))


def test_sampler_refuses_what_cannot_be_stratified(digits_membership):
    with pytest.raises(ValueError, match="attack.sample_sizes"):
        scored = digits_membership
        pairs = sum(min(g["member"].sum(), (~g["member"]).sum())
                    for _, g in scored.groupby("label"))
        make_attack_sample(digits_membership, 2 * pairs + 2, seed=0)
    with pytest.raises(ValueError, match="too small"):
        make_attack_sample(digits_membership, 2, seed=0)


# --------------------------------------------------------------------------- the bootstrap
def test_bootstrap_intervals_cover_the_true_value():
    """Members ~ N(d, 1), non-members ~ N(0, 1): AUC = Phi(d / sqrt 2), accuracy at the
    threshold d/2 = Phi(d / 2). 95% intervals must cover them about 95% of the time."""
    from scipy.stats import norm

    d, n, trials = 0.5, 200, 150
    true_auc, true_acc = norm.cdf(d / np.sqrt(2)), norm.cdf(d / 2)
    rng = np.random.default_rng(0)
    hits_auc = hits_acc = 0
    y = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    for k in range(trials):
        s = np.r_[rng.normal(d, 1, n), rng.normal(0, 1, n)]
        m = bootstrap_metrics(y, s, d / 2, n_boot=1000, seed=k)
        hits_auc += m["auc_ci_low"] <= true_auc <= m["auc_ci_high"]
        hits_acc += m["accuracy_ci_low"] <= true_acc <= m["accuracy_ci_high"]
    assert 0.88 <= hits_auc / trials <= 0.99, hits_auc / trials
    assert 0.88 <= hits_acc / trials <= 0.99, hits_acc / trials


def test_bootstrap_point_values_match_scikit_learn():
    from sklearn.metrics import accuracy_score, precision_score, roc_auc_score

    rng = np.random.default_rng(1)
    y = rng.random(300) < 0.5
    s = np.round(rng.normal(y * 0.4, 1.0), 1)  # rounded: many ties
    m = bootstrap_metrics(y, s, 0.2, n_boot=200, seed=0)
    assert m["auc"] == pytest.approx(roc_auc_score(y, s))
    assert m["accuracy"] == pytest.approx(accuracy_score(y, s >= 0.2))
    assert m["precision"] == pytest.approx(precision_score(y, s >= 0.2))
    for k in ("accuracy", "auc", "tpr_at_fpr_0.1"):
        assert m[f"{k}_ci_low"] <= m[k] <= m[f"{k}_ci_high"]
