"""Reference-model attacks (LiRA online/offline, RMIA, shadow MLP) on a synthetic family.

The family: a pool of samples with 10 classes; each sample has its own difficulty (a base
true-class logit margin, spread wider than the membership effect) and fixed other-class
logits. A model trained on a set of samples has, on sample i, the true-class margin
base_i + delta * IN_i + noise. The target trains on a random half of the pool; K reference
models on their own seeded halves. AttackData is built as the pipeline does: an attack sample
from ``make_attack_sample`` on the target's membership table, references aligned with the
sample rows, and the population = the target's non-members outside the sample.

With delta > 0 a per-sample attack (LiRA) must beat a global one (the paper's MLP on the
target's softmax): the base spread hides the membership shift from any single cut. With
delta = 0 every attack must be at chance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import family_attack_data
from lottery_mia.attack_samples import make_attack_sample
from lottery_mia.attacks import ATTACKS, AttackData, get_attack
from lottery_mia.confidences import ConfidenceTable
from lottery_mia.stats.resampling import bootstrap_metrics

REFERENCE_ATTACKS = ["lira_online", "lira_offline", "rmia", "shadow_mlp"]
LIGHT = {"shadow_mlp": {"hidden_layer_sizes": [16], "max_iter": 150, "max_rows": 6000}}


def family(delta: float, seed: int, *, n_pool: int = 2000, k: int = 16, classes: int = 10,
           n_sample: int = 1000, base_sd: float = 3.0, noise_sd: float = 1.0) -> AttackData:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n_pool)
    base = rng.normal(1.0, base_sd, n_pool)  # per-sample difficulty (margin of the label)
    other = rng.normal(0.0, 1.0, (n_pool, classes))  # per-sample other-class logits
    rows = np.arange(n_pool)

    def half() -> np.ndarray:
        inc = np.zeros(n_pool, bool)
        inc[rng.permutation(n_pool)[: n_pool // 2]] = True
        return inc

    def model(inc: np.ndarray) -> ConfidenceTable:
        logits = other + rng.normal(0.0, 0.2, (n_pool, classes))
        logits[rows, labels] = base + delta * inc + rng.normal(0.0, noise_sd, n_pool)
        return ConfidenceTable.from_logits(rows, labels, inc, logits)

    return family_attack_data(labels, half, model, k, n_sample, seed)


def run(data: AttackData, name: str, seed: int = 0, settings: dict | None = None):
    s = settings if settings is not None else LIGHT.get(name)
    return get_attack(name).factory(s, seed).fit_score(data)


def metrics_of(data: AttackData, out, n_boot: int = 1000) -> dict:
    rows = data.test & np.isfinite(out.score)
    return bootstrap_metrics(data.is_member[rows], out.score[rows], out.threshold,
                             n_boot=n_boot, seed=0)


@pytest.fixture(scope="module")
def signal():
    return family(delta=2.0, seed=1)


@pytest.fixture(scope="module")
def signal_results(signal):
    out = {name: run(signal, name) for name in REFERENCE_ATTACKS}
    out["mlp"] = run(signal, "mlp", settings={"hidden_layer_sizes": [64], "max_iter": 300})
    return {name: (o, metrics_of(signal, o)) for name, o in out.items()}


def test_registered_as_reference_attacks():
    for name in REFERENCE_ATTACKS:
        assert ATTACKS[name].kind == "reference" and ATTACKS[name].needs_references


def test_lira_beats_the_global_mlp_at_low_fpr(signal_results):
    lira, mlp = signal_results["lira_online"][1], signal_results["mlp"][1]
    # 250 attack-test non-members: 1% FPR is not measurable (2.5 above), 10% is (25)
    assert np.isnan(lira["tpr_at_fpr_0.01"]) and np.isnan(lira["tpr_at_fpr_0.01_ci_low"])
    assert lira["tpr_at_fpr_0.1"] > 0.3, lira["tpr_at_fpr_0.1"]
    assert lira["tpr_at_fpr_0.1"] > mlp["tpr_at_fpr_0.1"] + 0.2, \
        (lira["tpr_at_fpr_0.1"], mlp["tpr_at_fpr_0.1"])
    assert lira["auc"] > mlp["auc"] and lira["auc_ci_low"] > 0.5
    assert lira["accuracy_ci_low"] > 0.5


@pytest.mark.parametrize("name", REFERENCE_ATTACKS)
def test_every_reference_attack_finds_members(signal_results, name):
    m = signal_results[name][1]
    assert m["auc_ci_low"] > 0.5, (name, m["auc"], m["auc_ci_low"])
    assert m["accuracy"] > 0.5, name
    if name != "shadow_mlp":  # per-sample attacks: clearly above the global cut
        assert m["auc"] > 0.7, (name, m["auc"])


def test_fixed_and_per_row_variance_both_work(signal):
    for name in ("lira_online", "lira_offline"):
        fixed = run(signal, name, settings={"fixed_variance": True})
        per_row = run(signal, name, settings={"fixed_variance": False})
        auto = run(signal, name)
        assert fixed.info["fixed_variance"] and not per_row.info["fixed_variance"]
        assert auto.info["fixed_variance"]  # 16 references < 64: pooled
        np.testing.assert_array_equal(auto.score, fixed.score)
        assert not np.allclose(fixed.score, per_row.score)
        for out in (fixed, per_row):
            np.testing.assert_array_equal(np.isfinite(out.score), signal.judged())
            assert metrics_of(signal, out, n_boot=200)["auc"] > 0.7, name
    many = AttackData(signal.target, signal.sample, references=signal.references * 4,
                      reference_in=np.tile(signal.reference_in, (4, 1)))
    assert not run(many, "lira_online").info["fixed_variance"]  # 64 references: per row


def test_rows_without_in_or_out_references_are_not_scored(signal):
    """A row no reference trained on (or every one did) has nothing to be judged against:
    every reference attack leaves it nan (nothing imputed), the others are scored."""
    inc = signal.reference_in.copy()
    inc[:, :5] = False  # no IN reference
    inc[:, 5:10] = True  # no OUT reference
    data = AttackData(signal.target, signal.sample, references=signal.references,
                      reference_in=inc, population=signal.population,
                      population_references=signal.population_references,
                      population_in=signal.population_in)
    judged = data.judged()
    assert not judged[:10].any() and judged.sum() >= len(judged) - 12
    for name in ("lira_online", "lira_offline"):
        for fixed in (True, False):
            out = run(data, name, settings={"fixed_variance": fixed})
            np.testing.assert_array_equal(np.isfinite(out.score), judged, err_msg=name)
            assert out.info["rows_without_in"] == int((~inc.any(0)).sum()) >= 5
            assert out.info["rows_without_out"] == int(inc.all(0).sum()) >= 5
    for name, settings in (("rmia", {"offline": True}), ("rmia", {"offline": False}),
                           ("shadow_mlp", LIGHT["shadow_mlp"])):
        np.testing.assert_array_equal(np.isfinite(run(data, name, settings=settings).score),
                                      judged, err_msg=f"{name} {settings}")


def test_scores_ignore_the_targets_membership_labels(signal):
    """Flipping the target's member flags on attack-test rows changes no score (nor the
    threshold, chosen on attack-train rows)."""
    sample = signal.sample.copy()
    test = signal.test
    sample.loc[test, "member"] = ~sample.loc[test, "member"]
    target = ConfidenceTable.from_logits(signal.target.sample_id, signal.target.label,
                                         np.where(test, ~signal.target.member,
                                                  signal.target.member),
                                         signal.target.logits)
    flipped = AttackData(target, sample, references=signal.references,
                         reference_in=signal.reference_in, population=signal.population,
                         population_references=signal.population_references,
                         population_in=signal.population_in)
    for name in REFERENCE_ATTACKS:
        a, b = run(signal, name), run(flipped, name)
        np.testing.assert_array_equal(a.score, b.score, err_msg=name)
        assert a.threshold == b.threshold, name


@pytest.mark.parametrize("name", REFERENCE_ATTACKS)
def test_unknown_settings_are_refused_naming_the_key(name):
    with pytest.raises(ValueError, match=rf"attack\.{name}.*bogus"):
        get_attack(name).factory({"bogus": 1}, 0)


def test_bad_setting_values_are_refused():
    with pytest.raises(ValueError, match="attack.lira_online.fixed_variance"):
        get_attack("lira_online").factory({"fixed_variance": "sometimes"}, 0)
    with pytest.raises(ValueError, match="attack.rmia.a"):
        get_attack("rmia").factory({"a": 1.5}, 0)
    with pytest.raises(ValueError, match="attack.rmia.gamma"):
        get_attack("rmia").factory({"gamma": 0}, 0)
    with pytest.raises(ValueError, match="attack.shadow_mlp.features"):
        get_attack("shadow_mlp").factory({"features": "raw"}, 0)


def test_missing_references_or_population_are_refused(signal):
    bare = AttackData(signal.target, signal.sample)
    for name in REFERENCE_ATTACKS:
        with pytest.raises(ValueError, match="reference"):
            run(bare, name)
    no_pop = AttackData(signal.target, signal.sample, references=signal.references,
                        reference_in=signal.reference_in)
    with pytest.raises(ValueError, match="population rows"):
        run(no_pop, "rmia")
    # LiRA needs no population
    np.testing.assert_array_equal(np.isfinite(run(no_pop, "lira_online").score),
                                  signal.judged())


def test_rmia_online_and_offline_agree_on_direction(signal):
    for offline in (True, False):
        out = run(signal, "rmia", settings={"offline": offline, "gamma": 1.5})
        assert 0.0 <= np.nanmin(out.score) and np.nanmax(out.score) <= 1.0
        assert metrics_of(signal, out, n_boot=200)["auc"] > 0.7, offline


# --------------------------------------------------------------------------- the null
NULL_SEEDS = 20


@pytest.fixture(scope="module")
def null_runs():
    """Accuracy of each attack on attack-test rows, over NULL_SEEDS families with delta=0,
    and the first family's full metrics."""
    accs = {name: [] for name in REFERENCE_ATTACKS}
    first = {}
    for seed in range(NULL_SEEDS):
        data = family(delta=0.0, seed=100 + seed, n_pool=1600, n_sample=800)
        for name in REFERENCE_ATTACKS:
            out = run(data, name, seed=seed)
            rows = data.test & np.isfinite(out.score)
            y, hit = data.is_member[rows], out.score[rows] >= out.threshold
            accs[name].append(0.5 * (hit[y].mean() + (~hit[~y]).mean()))  # balanced
            if seed == 0:
                first[name] = metrics_of(data, out)
    return {k: float(np.mean(v)) for k, v in accs.items()}, first


@pytest.mark.parametrize("name", REFERENCE_ATTACKS)
def test_no_membership_effect_means_chance_null(null_runs, name):
    mean_acc, first = null_runs
    m = first[name]
    assert m["auc_ci_low"] <= 0.5 <= m["auc_ci_high"], (name, m["auc"])
    assert abs(mean_acc[name] - 0.5) <= 0.02, (name, mean_acc[name])


def _phi_family(seed: int, *, n: int = 2000, k: int = 4, sigma: float = 1.0,
                delta: float = 1.0, mu_sd: float = 3.0, views: int = 1) -> AttackData:
    """A known truth on LiRA's own statistic: phi of sample i under a model is
    mu_i + delta * IN + sigma * noise (per view), mu_i spread wider than delta."""
    rng = np.random.default_rng(seed)
    rows = np.arange(n)
    mu = rng.normal(0.0, mu_sd, n)
    labels = rows % 10

    def model(inc):
        phi = mu[:, None] + delta * inc[:, None] + sigma * rng.normal(0, 1, (n, views))
        return ConfidenceTable.from_logits(rows, labels, inc, np.zeros((n, 10)),
                                           phi=phi.mean(1), phi_views=phi)

    member = np.zeros(n, bool)
    member[rng.permutation(n)[: n // 2]] = True
    ref_in = np.zeros((k, n), bool)
    for j in range(k // 2):  # the pipeline's paired halves
        half = rng.permutation(n)
        ref_in[2 * j, half[: n // 2]] = True
        ref_in[2 * j + 1, half[n // 2:]] = True
    membership = pd.DataFrame({"sample_id": rows, "pool": "all", "pool_index": rows,
                               "label": labels, "member": member, "scored": True})
    sample = make_attack_sample(membership, 1000, seed)
    ids = sample["sample_id"].to_numpy()
    target = model(member)
    refs = [model(inc) for inc in ref_in]
    return AttackData(target=target.rows(ids), sample=sample,
                      references=[r.rows(ids) for r in refs], reference_in=ref_in[:, ids])


def test_lira_fixed_variance_recovers_sigma_and_is_at_least_carlinis():
    """With K = 4 (two IN and two OUT references per row) the pooled within-row variance
    with one degree of freedom per row recovers sigma (the earlier estimator gave
    sigma / sqrt(2)); Carlini et al.'s global std of the IN scores adds the rows' spread.
    LiRA with the pooled estimate is at least as good as with Carlini's."""
    from scipy.stats import norm

    aucs, carlini = [], []
    for seed in range(3):
        data = _phi_family(seed)
        out = run(data, "lira_online", settings={"fixed_variance": True})
        assert out.info["sigma_in"] == pytest.approx(1.0, rel=0.1)
        assert out.info["sigma_out"] == pytest.approx(1.0, rel=0.1)
        aucs.append(metrics_of(data, out, n_boot=200)["auc"])
        # Carlini's released code: std of all IN scores, reused for OUT
        phi = np.stack([r.scaled_logit() for r in data.references])
        inc = data.reference_in
        mu_in = np.array([phi[inc[:, i], i].mean() for i in range(phi.shape[1])])
        mu_out = np.array([phi[~inc[:, i], i].mean() for i in range(phi.shape[1])])
        s = float(np.std(phi[inc]))
        assert s > 2.0  # the rows' spread, not sigma
        t = data.target.scaled_logit()
        score = norm.logpdf(t, mu_in, s) - norm.logpdf(t, mu_out, s)
        carlini.append(bootstrap_metrics(data.is_member[data.test], score[data.test], 0.0,
                                         n_boot=200, seed=0)["auc"])
    assert np.mean(aucs) >= np.mean(carlini) - 0.005, (aucs, carlini)


def test_lira_fits_each_view_and_averages_their_scores():
    one = _phi_family(4, views=1)
    two = _phi_family(4, views=2)
    out1 = run(one, "lira_online", settings={"fixed_variance": True})
    out2 = run(two, "lira_online", settings={"fixed_variance": True})
    assert out1.info["views"] == 1 and out2.info["views"] == 2
    # two independent noisy views of the same membership shift: a stronger attack
    assert metrics_of(two, out2, 200)["auc"] > metrics_of(one, out1, 200)["auc"]
    # averaging the scaled logits first is not what is done: scores differ
    flat = _phi_family(4, views=2)
    for t in [flat.target] + flat.references:
        t.phi_views = None
    assert not np.allclose(run(flat, "lira_online", settings={"fixed_variance": True}).score,
                           out2.score)


def test_rmia_tunes_a_on_a_reference_model_unless_it_is_given():
    data = family(delta=2.0, seed=3, k=8)
    tuned = run(data, "rmia", settings={})
    assert tuned.info["a_tuned"] and tuned.info["a"] in [round(0.1 * i, 1) for i in range(11)]
    assert 0.5 < tuned.info["a_tuning_auc"] <= 1.0
    fixed = run(data, "rmia", settings={"a": 0.3})
    assert not fixed.info["a_tuned"] and fixed.info["a"] == 0.3
    with pytest.raises(ValueError, match="at least 3 references"):
        run(family(delta=2.0, seed=3, k=2), "rmia", settings={})
