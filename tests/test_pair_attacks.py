"""The pair attacks (:mod:`lottery_mia.attacks.pair`): a pruned network and its dense parent
queried together. Null tests through the pipeline's own path (tables written and read back by
:func:`attack_data`, :func:`add_references` and :func:`add_parent`, attacks run by
:func:`evaluate_attacks`): with no membership effect in any network, mean AUC 0.50 +- 0.01
and mean TPR at 10% FPR <= 0.12 over 30 repetitions; a known effect that only the pair can
see (a per-row quirk the target's dense network and ticket share and no reference does) is
found by the pair attacks and not by the single-network attack it extends; the plan runs
them on pruned networks only and hands them the parents; wrong parents are refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lottery_mia.attack_samples import make_attack_sample
from lottery_mia.attacks import (ATTACKS, add_parent, add_references, attack_data,
                                 evaluate_attacks)
from lottery_mia.confidences import ConfidenceTable, write_confidences
from lottery_mia.references import inclusion_matrix, make_inclusion

K = 4
PAIRS = ["pair_lira", "pair_mlp"]
SETTINGS = {"pair_mlp": {"hidden_layer_sizes": [16], "max_iter": 200},
            "mlp": {"hidden_layer_sizes": [16], "max_iter": 200}}
REPETITIONS = 30


def world(seed: int, tmp, effect: float = 0.0, quirk: float = 0.0, dense_gain: float = 0.5,
          members: int = 250, nonmembers: int = 750, sample_size: int = 500,
          classes: int = 10):
    """The default run's geometry: a target ticket and its dense parent, K reference
    tickets and their own dense parents, as the pipeline writes them. ``effect``: the
    ticket's true-class logit is raised by it on rows it trained on (and the dense
    network's by ``dense_gain`` times it); ``quirk``: the sd of a per-row offset the target pair
    shares (and no reference), which hides the effect from a single network but cancels
    in the pair's difference."""
    rng = np.random.default_rng(seed)
    n = members + nonmembers
    ids = np.arange(n, dtype=np.int64)
    labels = rng.integers(0, classes, n)
    member = np.zeros(n, bool)
    member[rng.permutation(n)[:members]] = True
    membership = pd.DataFrame({"sample_id": ids, "pool": "all", "pool_index": ids,
                               "label": labels, "member": member, "scored": True})
    inclusion = make_inclusion(membership, K, seed=1000 + seed)
    inc = inclusion_matrix(inclusion, ids, K)
    base = rng.normal(2.0, 2.0, n)  # each row's difficulty, shared by every model
    other = rng.normal(0.0, 1.0, (n, classes))
    shared = rng.normal(0.0, quirk, n) if quirk else np.zeros(n)

    def pair(trained_on, run: str, replicate: int, offset):
        paths = []
        for method, sparsity, gain in (("dense", 0.0, dense_gain), ("oneshot", 0.8, 1.0)):
            logits = other + rng.normal(0.0, 0.3, (n, classes))
            logits[ids, labels] = (base + offset + gain * effect * trained_on
                                   + rng.normal(0.0, 0.5, n))
            meta = {"dataset": "digits", "arch": "resnet18", "method": method,
                    "sparsity": sparsity, "replicate": replicate}
            path = tmp / f"{run}-{method}.parquet"
            write_confidences(ConfidenceTable.from_logits(ids, labels, trained_on, logits,
                                                          meta), path)
            paths.append(path)
        return paths

    dense, ticket = pair(member, "target", 0, shared)
    refs = [pair(inc[k], f"ref-{k}", 1000 + k, 0.0) for k in range(K)]
    inclusion.to_parquet(tmp / "inclusion.parquet", index=False)
    make_attack_sample(membership, sample_size, seed).to_parquet(tmp / "sample.parquet",
                                                                 index=False)
    data = attack_data(ticket, tmp / "sample.parquet", "softmax", all_rows=True)
    add_references(data, [r[1] for r in refs], tmp / "inclusion.parquet", ticket,
                   [1000 + k for k in range(K)])
    add_parent(data, dense, [r[0] for r in refs], [1000 + k for k in range(K)])
    return data


def run(tmp_path_factory, reps: int, attacks, **kw) -> dict:
    out = {a: [] for a in attacks}
    for rep in range(reps):
        data = world(rep, tmp_path_factory.mktemp(f"pair{rep}"), **kw)
        rows, _ = evaluate_attacks(data, attacks, SETTINGS, seed=rep, n_bootstrap=50)
        for r in rows:
            out[r["attack"]].append(r)
    return {a: pd.DataFrame(v) for a, v in out.items()}


@pytest.fixture(scope="module")
def null_runs(tmp_path_factory):
    return run(tmp_path_factory, REPETITIONS, PAIRS)


@pytest.mark.slow
@pytest.mark.parametrize("attack", PAIRS)
def test_pair_attacks_are_at_chance_without_membership(null_runs, attack):
    r = null_runs[attack]
    assert len(r) == REPETITIONS
    assert abs(r["auc"].mean() - 0.5) <= 0.01, (attack, r["auc"].mean())
    acc = "balanced_accuracy" if attack == "pair_lira" else "accuracy"  # unequal rows
    assert abs(r[acc].mean() - 0.5) <= 0.02, (attack, r[acc].mean())
    tpr = r["tpr_at_fpr_0.1"].dropna()
    assert len(tpr) >= REPETITIONS // 2, attack
    assert tpr.mean() <= 0.12, (attack, tpr.mean())


@pytest.mark.slow
def test_only_the_pair_sees_an_effect_hidden_by_a_quirk_the_pair_shares(tmp_path_factory):
    """A membership effect of the ticket alone (pruning makes members diverge) under a
    per-row offset the target's two networks share (and the references do not): LiRA on
    the ticket alone is drowned by the offset, the pair's difference cancels it."""
    runs = run(tmp_path_factory, 3, ["pair_lira", "lira_online", "pair_mlp", "mlp"],
               effect=1.5, quirk=3.0, dense_gain=0.0)
    pair_auc, single_auc = runs["pair_lira"]["auc"].mean(), runs["lira_online"]["auc"].mean()
    assert pair_auc > 0.6 and pair_auc > single_auc + 0.05, (pair_auc, single_auc)


@pytest.mark.slow
def test_pair_mlp_finds_a_real_effect(tmp_path_factory):
    runs = run(tmp_path_factory, 3, ["pair_mlp"], effect=3.0, dense_gain=0.0)
    assert runs["pair_mlp"]["auc"].mean() > 0.6, runs["pair_mlp"]["auc"].mean()


def test_pair_lira_scores_only_rows_the_references_can_judge(tmp_path):
    data = world(0, tmp_path, effect=1.0)
    rows, scores = evaluate_attacks(data, ["pair_lira"], {}, seed=0, n_bootstrap=20)
    judged = data.judged()
    assert np.isfinite(scores["pair_lira"][judged]).all()
    assert np.isnan(scores["pair_lira"][~judged]).all()
    assert rows[0]["n_unjudged"] == int((~judged).sum()) > 0


def test_a_wrong_parent_is_refused(tmp_path):
    data = world(0, tmp_path)
    ticket = tmp_path / "target-oneshot.parquet"
    with pytest.raises(ValueError, match="method='oneshot'.*method='dense'"):
        add_parent(data, ticket)  # the ticket itself, not its dense parent
    other_seed = tmp_path / "ref-0-dense.parquet"  # a dense network of another seed
    with pytest.raises(ValueError, match="replicate"):
        add_parent(data, other_seed)
    with pytest.raises(ValueError, match="reference 0's ticket"):
        add_parent(data, tmp_path / "target-dense.parquet",
                   [tmp_path / f"ref-{k}-dense.parquet" for k in (1, 0, 2, 3)])


def test_pair_attacks_need_a_parent():
    assert ATTACKS["pair_lira"].needs_parent and ATTACKS["pair_mlp"].needs_parent
    assert ATTACKS["pair_lira"].extends == "lira_online"
    assert ATTACKS["pair_mlp"].extends == "mlp"
    why = ATTACKS["pair_mlp"].cannot_run(None, 0, with_parent=False)
    assert "dense parent" in why
    assert ATTACKS["pair_mlp"].cannot_run(None, 0) is None


def test_the_plan_runs_pair_attacks_on_pruned_networks_with_their_parents():
    from conftest import tiny_config
    from lottery_mia.config import load_config
    from lottery_mia.plan import Plan

    cfg = tiny_config()
    cfg["attack"]["models"] = ["mlp", "pair_mlp"]
    cfg["references"]["attacks"] = ["lira_online", "pair_lira"]
    plan = Plan(load_config(cfg))
    for m in plan.models():
        names = plan.attacks_of(m)
        inputs = plan.attack_inputs(m)
        if m.is_dense:
            assert "pair_mlp" not in names and "pair_lira" not in names
            assert "parent" not in inputs
            continue
        assert "pair_mlp" in names
        assert inputs["parent"] == plan.parent_of(m).confidences
        assert "/dense/sparsity-0/" in inputs["parent"] and f"/{m.run}/" in inputs["parent"]
        if plan.in_reference_grid(m):
            assert "pair_lira" in names
            assert inputs["reference_parents"] == [
                r.confidences.replace(f"/{m.method}/", "/dense/").replace(
                    r.confidences.split("/")[-2], "sparsity-0")
                for r in plan.references_of(m)]
        else:
            assert "pair_lira" not in names and "reference_parents" not in inputs


def test_the_audit_of_one_model_has_no_pair_attack_and_says_why_when_asked():
    from lottery_mia.audit.inputs import AuditInputError, plan_attacks

    names, skipped = plan_attacks(None, 4, {})
    assert not {"pair_lira", "pair_mlp"} & (set(names) | set(skipped))
    with pytest.raises(AuditInputError, match="'pair_mlp' needs the dense parent"):
        plan_attacks(["mlp", "pair_mlp"], 4, {})
