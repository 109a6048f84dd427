"""SAMIA (Yuan & Zhang 2022): its tokens, its sensitivity features, its null and a known
effect that only the sensitivity carries.

The family: as in test_reference_attacks, a pool with per-sample difficulty; each model's
softmax on sample i depends on whether it trained on i only through ``delta`` (the logit
margin), and its sensitivity through ``shrink``: a model's sensitivity on a sample it
trained on is (1 - shrink) times the sample's own base sensitivity (members sit in flatter
regions of the input space), noisy. With delta = 0 and shrink > 0 only the sensitivity says
who is a member: SAMIA must find them where the loss cannot. With both 0 nothing can.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import family_attack_data
from lottery_mia.attacks import ATTACKS, AttackData, get_attack
from lottery_mia.attacks.samia import samia_tokens
from lottery_mia.confidences import ConfidenceTable, read_confidences, write_confidences
from lottery_mia.stats.metrics import attack_metrics

# the paper's classifier, lighter (1 layer, 8 epochs, 2400 rows): the null and the effect
# hold for any settings
LIGHT = {"epochs": 8, "layers": 1, "hidden": 32, "batch_size": 64, "lr": 0.01, "max_rows": 2400}


def family(delta: float, shrink: float, seed: int, *, n_pool: int = 1200, k: int = 4,
           classes: int = 10, n_sample: int = 600) -> AttackData:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n_pool)
    base = rng.normal(2.0, 2.0, n_pool)
    other = rng.normal(0.0, 1.0, (n_pool, classes))
    base_sens = rng.lognormal(0.0, 0.5, (n_pool, 1)) * rng.lognormal(0.0, 0.3, (n_pool,
                                                                                 classes))
    rows = np.arange(n_pool)

    def half() -> np.ndarray:
        inc = np.zeros(n_pool, bool)
        inc[rng.permutation(n_pool)[: n_pool // 2]] = True
        return inc

    def model(inc: np.ndarray) -> ConfidenceTable:
        logits = other + rng.normal(0.0, 0.2, (n_pool, classes))
        logits[rows, labels] = base + delta * inc + rng.normal(0.0, 0.5, n_pool)
        sens = base_sens * (1.0 - shrink * inc)[:, None] \
            * rng.lognormal(0.0, 0.1, (n_pool, classes))
        return ConfidenceTable.from_logits(rows, labels, inc, logits, sensitivity=sens)

    return family_attack_data(labels, half, model, k, n_sample, seed)


def evaluated_metrics(data: AttackData, score: np.ndarray) -> dict:
    """The metrics on the rows the pipeline evaluates a reference attack on."""
    rows = data.evaluated("reference", score)
    return attack_metrics(data.is_member[rows], score[rows])


def test_registered_as_a_reference_attack_that_reads_the_sensitivity():
    kind = ATTACKS["samia"]
    assert kind.kind == "reference" and kind.needs_references and kind.needs_sensitivity
    assert "sensitivity" in kind.cannot_run(None, 4, with_sensitivity=False)
    assert kind.cannot_run(None, 0) == "needs reference models (references)"
    assert kind.cannot_run(None, 4) is None


def test_tokens_are_every_class_in_class_order_up_to_the_token_count():
    logits = np.array([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0]], np.float32)
    sens = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], np.float32)
    t = ConfidenceTable.from_logits([0, 1], [2, 0], [True, False], logits, sensitivity=sens)
    x = samia_tokens(t, tokens=10)
    assert x.shape == (2, 9) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, :3], t.softmax, rtol=1e-6)
    np.testing.assert_array_equal(x[:, 3:6], sens)
    np.testing.assert_array_equal(x[:, 6:], [[0, 0, 1], [1, 0, 0]])


def test_beyond_the_token_count_the_true_class_comes_first_then_the_most_probable():
    logits = np.array([[0.0, 5.0, 1.0, 4.0, 2.0]], np.float32)
    sens = np.arange(5, dtype=np.float32)[None, :] / 10
    t = ConfidenceTable.from_logits([0], [2], [True], logits, sensitivity=sens)
    x = samia_tokens(t, tokens=3)
    order = [2, 1, 3]  # the true class, then the two most probable others
    np.testing.assert_allclose(x[0, :3], t.softmax[0, order], rtol=1e-6)
    np.testing.assert_allclose(x[0, 3:6], sens[0, order])
    np.testing.assert_array_equal(x[0, 6:], [1, 0, 0])
    assert samia_tokens(t, tokens=None).shape == (1, 15)  # null: every class


def test_a_table_without_sensitivity_is_refused_saying_what_to_do():
    data = family(0.0, 0.0, seed=3)
    data.target = ConfidenceTable.from_logits(data.target.sample_id, data.target.label,
                                              data.target.member, data.target.logits)
    with pytest.raises(ValueError, match="confidences.sensitivity"):
        get_attack("samia").factory(LIGHT, 0).fit_score(data)


@pytest.mark.parametrize("bad, key", [({"epochs": 0}, "epochs"), ({"dropout": 1.5}, "dropout"),
                                      ({"hidden": 30, "heads": 4}, "hidden"),
                                      ({"tokens": 1}, "tokens"), ({"layer": 2}, "layer")])
def test_bad_settings_are_refused_naming_the_key(bad, key):
    with pytest.raises(ValueError, match=f"attack.samia.*{key}"):
        get_attack("samia").factory(bad, 0)


def test_the_sensitivity_column_survives_a_write_and_read(tmp_path):
    rng = np.random.default_rng(0)
    sens = rng.random((5, 4), dtype=np.float32)
    t = ConfidenceTable.from_logits(np.arange(5), [0, 1, 2, 3, 0], [True] * 5,
                                    rng.normal(size=(5, 4)), sensitivity=sens)
    write_confidences(t, tmp_path / "t.parquet", logits_dtype="float16")
    back = read_confidences(tmp_path / "t.parquet")
    np.testing.assert_array_equal(back.sensitivity, sens)  # float32 whatever the logits
    np.testing.assert_array_equal(back.take([4, 1]).sensitivity, sens[[4, 1]])
    write_confidences(ConfidenceTable.from_logits(np.arange(5), [0] * 5, [True] * 5,
                                                  rng.normal(size=(5, 4))),
                      tmp_path / "plain.parquet")
    assert read_confidences(tmp_path / "plain.parquet").sensitivity is None


def test_the_sensitivity_is_the_papers_finite_difference():
    """predict_views' sensitivity equals the paper's formula computed directly: for each
    class, the mean over the draws of |softmax(f(x + eps u)) - softmax(f(x))| / eps."""
    import torch

    from lottery_mia.scoring import predict_views

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5))
    x = torch.randn(7, 3, 2, 2)
    y = torch.randint(0, 5, (7,))

    class Batches:
        def eval_batches(self, batch_size):
            for i in range(0, 7, batch_size):
                yield x[i:i + batch_size], y[i:i + batch_size]

    settings = {"draws": 3, "epsilon": 1e-2, "seed": 5}
    (logits,), labels, sens = predict_views(net, Batches(), 4, "cpu", sensitivity=settings)
    gen = torch.Generator().manual_seed(5)
    want = []
    with torch.no_grad():
        for i in range(0, 7, 4):
            xb = x[i:i + 4]
            p = torch.softmax(net(xb), 1)
            diffs = [(torch.softmax(net(xb + 1e-2 * torch.randn(xb.shape, generator=gen)), 1)
                      - p).abs() for _ in range(3)]
            want.append(torch.stack(diffs).mean(0) / 1e-2)
    np.testing.assert_allclose(sens, torch.cat(want).numpy(), rtol=1e-5, atol=1e-6)
    assert sens.shape == logits.shape and (sens > 0).all()
    views, _ = predict_views(net, Batches(), 4, "cpu")  # off: the two-item result
    np.testing.assert_array_equal(views[0], logits)


def test_finds_members_that_only_the_sensitivity_gives_away():
    """Known effect: the softmax carries no membership (delta 0), the sensitivity does. The
    loss attack stays at chance; SAMIA finds the members."""
    data = family(delta=0.0, shrink=0.5, seed=11)
    out = get_attack("samia").factory(LIGHT, 0).fit_score(data)
    m = evaluated_metrics(data, out.score)
    loss = get_attack("loss").factory(None, 0).fit_score(data)
    test = data.test
    m_loss = attack_metrics(data.is_member[test], loss.score[test])
    assert m["auc"] > 0.75, m["auc"]
    assert abs(m_loss["auc"] - 0.5) < 0.06, m_loss["auc"]
    assert out.info["tokens"] == 10 and out.info["shadow_rows"] > 0
    assert np.isnan(out.score[~data.judged()]).all()


def test_scores_ignore_the_targets_membership_labels():
    data = family(delta=1.0, shrink=0.3, seed=12)
    a = get_attack("samia").factory(LIGHT, 0).fit_score(data).score
    flipped = data.sample.copy()
    flipped["member"] = ~flipped["member"]
    data.sample = flipped
    b = get_attack("samia").factory(LIGHT, 0).fit_score(data).score
    np.testing.assert_array_equal(a, b)


NULL_REPETITIONS = 30


def test_no_membership_effect_is_chance_over_30_repetitions():
    """The null through the attack's own code: no effect on the softmax or the
    sensitivity. Over 30 families the mean AUC is 0.50 +- 0.01 and the TPR at 10% FPR at
    most 0.12."""
    aucs, tprs = [], []
    for rep in range(NULL_REPETITIONS):
        data = family(delta=0.0, shrink=0.0, seed=200 + rep)
        out = get_attack("samia").factory(LIGHT, rep).fit_score(data)
        m = evaluated_metrics(data, out.score)
        aucs.append(m["auc"])
        tprs.append(m["tpr_at_fpr_0.1"])
    assert abs(np.mean(aucs) - 0.5) <= 0.01, np.mean(aucs)
    assert np.mean(tprs) <= 0.12, np.mean(tprs)


def test_the_audit_does_not_run_samia_and_says_why_when_asked():
    """The audit attacks one table given by the user: no sensitivity column is read."""
    from lottery_mia.audit import AuditInputError, plan_attacks

    names, skipped = plan_attacks(None, 4, {})
    assert "samia" not in names and "lira_online" in names
    with pytest.raises(AuditInputError, match="sensitivity"):
        plan_attacks(["samia"], 4, {})


def test_tokens_built_in_chunks_equal_tokens_built_at_once(monkeypatch):
    import lottery_mia.attacks.samia as samia

    rng = np.random.default_rng(4)
    t = ConfidenceTable.from_logits(np.arange(50), rng.integers(0, 30, 50), [True] * 50,
                                    rng.normal(size=(50, 30)),
                                    sensitivity=rng.random((50, 30)))
    whole = samia_tokens(t, tokens=6)
    monkeypatch.setattr(samia, "TOKEN_CHUNK", 7)
    np.testing.assert_array_equal(samia_tokens(t, tokens=6), whole)
    assert whole.shape == (50, 18)


def test_references_are_reduced_without_their_sensitivity_and_read_it_back(tmp_path,
                                                                          monkeypatch):
    """add_references keeps per-row statistics, not the n x C sensitivity (it never decodes
    the column); SAMIA's shadow rows read it back from each reference's file."""
    import lottery_mia.attacks as attacks
    from lottery_mia.attacks import add_references
    from lottery_mia.attacks.reference_rows import ReferenceRows

    reads = []
    original = attacks.read_confidences

    def recorded(path, sensitivity=True):
        reads.append(sensitivity)
        return original(path, sensitivity=sensitivity)

    monkeypatch.setattr(attacks, "read_confidences", recorded)

    data = family(0.0, 0.5, seed=5, n_pool=400, n_sample=200, k=2)
    full = ConfidenceTable.from_logits(
        np.r_[data.target.sample_id, data.population.sample_id],
        np.r_[data.target.label, data.population.label],
        np.r_[data.target.member, data.population.member],
        np.r_[data.target.logits, data.population.logits],
        sensitivity=np.r_[data.target.sensitivity, data.population.sensitivity])
    write_confidences(full, tmp_path / "target.parquet")
    paths, rows = [], []
    for k, (ref, pop) in enumerate(zip(data.references, data.population_references)):
        table = ConfidenceTable.from_logits(
            np.r_[ref.sample_id, pop.sample_id], np.r_[ref.label, pop.label],
            np.r_[ref.member, pop.member], np.r_[ref.logits, pop.logits],
            sensitivity=np.r_[ref.sensitivity, pop.sensitivity])
        paths.append(tmp_path / f"ref-{k}.parquet")
        write_confidences(table, paths[-1])
        rows.append(pd.DataFrame({"reference": k, "sample_id": table.sample_id,
                                  "included": table.member}))
    pd.concat(rows).to_parquet(tmp_path / "inclusion.parquet", index=False)
    expected = data.references[1].sensitivity[:3]
    fresh = AttackData(target=data.target, sample=data.sample)
    add_references(fresh, paths, tmp_path / "inclusion.parquet", tmp_path / "target.parquet")
    assert isinstance(fresh.references[1], ReferenceRows)
    assert reads == [False] * 3  # the target's population rows and the 2 references
    np.testing.assert_array_equal(fresh.references[1].take([0, 1, 2]).sensitivity, expected)
    out = get_attack("samia").factory({**LIGHT, "epochs": 2}, 0).fit_score(fresh)
    assert out.info["shadow_rows"] > 0
