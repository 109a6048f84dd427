"""lottery_mia.reporting.summaries: the summary tables read and computed, and the identity
every attack scores table carries."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lottery_mia.jobs.summarize import summarize_attacks
from lottery_mia.reporting.summaries import (gap_correlation, method_means, read_scores,
                                             scores_identity, write_scores)

IDENT = {"dataset": "digits", "arch": "resnet18", "method": "oneshot", "sparsity": 0.8,
         "replicate": 0, "sample_size": 40}


def _frame(signal: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    member = np.r_[np.ones(30, bool), np.zeros(30, bool)]
    fold = np.r_[["attack_train"] * 10, ["attack_test"] * 20, ["attack_train"] * 10,
                 ["attack_test"] * 20]
    return pd.DataFrame({"sample_id": np.arange(60), "label": np.arange(60) % 3,
                         "member": member, "fold": fold, "correct": rng.random(60) < 0.9,
                         "score_loss": signal * member + rng.normal(size=60)})


def test_a_scores_table_round_trips_with_its_identity(tmp_path):
    frame = _frame(1.0, 0)
    write_scores(frame, IDENT, tmp_path / "scores.parquet")
    assert scores_identity(tmp_path / "scores.parquet") == IDENT
    back = read_scores(tmp_path / "scores.parquet", IDENT)
    pd.testing.assert_frame_equal(back, frame)


@pytest.mark.parametrize("key,other", [("method", "dense"), ("sparsity", 0.5),
                                       ("replicate", 1), ("sample_size", 100)])
def test_a_scores_table_of_another_model_is_refused_naming_the_key(tmp_path, key, other):
    write_scores(_frame(1.0, 0), IDENT, tmp_path / "scores.parquet")
    with pytest.raises(ValueError, match=rf"scores.parquet holds .* {key}=.*read as the one "
                                         rf"with {key}="):
        read_scores(tmp_path / "scores.parquet", {**IDENT, key: other})


def test_a_scores_table_without_identity_is_refused_when_one_is_expected(tmp_path):
    _frame(1.0, 0).to_parquet(tmp_path / "old.parquet", index=False)
    assert scores_identity(tmp_path / "old.parquet") is None
    read_scores(tmp_path / "old.parquet")  # read as a plain table when nothing is expected
    with pytest.raises(ValueError, match="does not record which model"):
        read_scores(tmp_path / "old.parquet", {"method": "oneshot"})
    (tmp_path / "junk.parquet").write_bytes(b"junk")
    with pytest.raises(ValueError, match="junk.parquet is not a readable attack scores"):
        scores_identity(tmp_path / "junk.parquet")


def _fit_attack_output(d, method, sparsity, replicate, signal):
    d.mkdir(parents=True)
    frame = _frame(signal, replicate)
    ident = {**IDENT, "method": method, "sparsity": sparsity, "replicate": replicate}
    write_scores(frame, ident, d / "scores.parquet")
    test = frame[frame.fold == "attack_test"]
    from lottery_mia.stats.metrics import attack_metrics

    m = attack_metrics(test.member.to_numpy(), test.score_loss.to_numpy(), signal / 2)
    (d / "metrics.json").write_text(json.dumps({
        **{k: v for k, v in ident.items() if k != "sample_size"},
        "achieved_sparsity": sparsity, "sample_size": 40, "features": "softmax",
        "attacks": [{"attack": "loss", "kind": "threshold", "threshold": signal / 2, **m}]}))
    return d / "metrics.json", d / "scores.parquet"


def test_summarize_attacks_refuses_two_models_scores_swapped(tmp_path):
    a = _fit_attack_output(tmp_path / "dense", "dense", 0.0, 0, 1.0)
    b = _fit_attack_output(tmp_path / "ticket", "oneshot", 0.8, 0, 2.0)
    frame = summarize_attacks([a[0], b[0]], [a[1], b[1]], tmp_path / "attacks.csv",
                              n_bootstrap=50)
    assert set(frame["replicate"]) == {"0", "mean"}
    with pytest.raises(ValueError, match=r"ticket/scores.parquet holds .* method='dense'"):
        summarize_attacks([a[0], b[0]], [b[1], a[1]], tmp_path / "attacks2.csv",
                          n_bootstrap=50)
    assert not (tmp_path / "attacks2.csv").exists()


def test_mean_rows_average_the_seeds_and_give_a_seed_interval(tmp_path):
    outs = [_fit_attack_output(tmp_path / f"s{r}", "oneshot", 0.8, r, 1.5) for r in (0, 1, 2)]
    frame = summarize_attacks([o[0] for o in outs], [o[1] for o in outs],
                              tmp_path / "attacks.csv", n_bootstrap=50)
    mean = frame[frame.replicate == "mean"].iloc[0]
    seeds = frame[frame.replicate != "mean"]
    assert mean["replicates"] == 3
    assert mean["auc"] == pytest.approx(seeds["auc"].mean())
    assert mean["auc_seed_ci_low"] < mean["auc"] < mean["auc_seed_ci_high"]


def _training(gaps: dict) -> pd.DataFrame:
    rows = []
    for (method, sparsity), per_seed in gaps.items():
        for r, gap in enumerate(per_seed):
            rows.append({"dataset": "digits", "arch": "resnet18", "method": method,
                         "method_kind": "dense" if method == "dense" else "ticket",
                         "sparsity": sparsity, "achieved_sparsity": sparsity,
                         "replicate": r, "test_acc": 1 - gap, "train_acc": 1.0,
                         "generalization_gap": gap})
    return pd.DataFrame(rows)


def test_method_means_average_seeds_with_clipped_accuracy_intervals():
    t = _training({("dense", 0.0): [0.01, 0.03], ("oneshot", 0.8): [0.10]})
    m = method_means(t).set_index("method")
    assert m.loc["dense", "generalization_gap"] == pytest.approx(0.02)
    assert m.loc["dense", "test_acc_seed_ci_high"] <= 1.0
    assert m.loc["dense", "replicates"] == 2
    assert np.isnan(m.loc["oneshot", "test_acc_seed_ci_low"])  # one seed: no interval


def test_the_gap_correlation_is_over_models_not_seeds():
    gaps = {("dense", 0.0): [0.0, 0.02], ("oneshot", 0.5): [0.1, 0.12],
            ("oneshot", 0.8): [0.2, 0.22], ("oneshot", 0.9): [0.3, 0.32]}
    t = _training(gaps)
    attacks = t[["dataset", "arch", "method", "sparsity", "replicate"]].copy()
    attacks["attack"], attacks["sample_size"] = "loss", 40
    attacks["auc"] = 0.5 + t["generalization_gap"].to_numpy()
    attacks["replicate"] = attacks["replicate"].astype(str)
    merged, stats = gap_correlation(t, attacks, 40, "loss")
    assert stats["models"] == 4 and stats["points"] == 8 and stats["seeds"] == 2
    assert stats["spearman_rho"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="report.figure2_sample_size"):
        gap_correlation(t, attacks, 999, "loss")


def test_attack_results_are_checked_against_the_model_the_plan_expects(tmp_path):
    import shutil

    a = _fit_attack_output(tmp_path / "dense", "dense", 0.0, 0, 1.0)
    b = _fit_attack_output(tmp_path / "ticket", "oneshot", 0.8, 0, 2.0)
    plan = [{**IDENT, "method": "dense", "sparsity": 0.0}, dict(IDENT)]
    summarize_attacks([a[0], b[0]], [a[1], b[1]], tmp_path / "ok.csv", n_bootstrap=50,
                      models=plan)
    # a model's whole attack folder swapped with the other's: each file agrees with its
    # neighbour, not with where the plan expects it
    shutil.move(tmp_path / "dense", tmp_path / "tmp")
    shutil.move(tmp_path / "ticket", tmp_path / "dense")
    shutil.move(tmp_path / "tmp", tmp_path / "ticket")
    with pytest.raises(ValueError, match=r"dense/metrics.json holds the results of the model "
                                         r"with method='oneshot'.*plan expects"):
        summarize_attacks([a[0], b[0]], [a[1], b[1]], tmp_path / "swapped.csv",
                          n_bootstrap=50, models=plan)


def test_transfer_rows_are_checked_against_their_source_model(tmp_path):
    from lottery_mia.jobs.summarize import summarize_transfer

    row = {"source_arch": "resnet18", "source_method": "oneshot", "source_sparsity": 0.8,
           "target_arch": "resnet18", "target_method": "dense", "target_sparsity": 0.0,
           "accuracy": 0.6}
    pd.DataFrame([row]).to_csv(tmp_path / "t.csv", index=False)
    src = {"arch": "resnet18", "method": "oneshot", "sparsity": 0.8}
    out = summarize_transfer([tmp_path / "t.csv"], "digits", 0, tmp_path / "all.csv",
                             sources=[src])
    assert len(out) == 1
    with pytest.raises(ValueError, match="t.csv holds the results of the model with "
                                         "method='oneshot'"):
        summarize_transfer([tmp_path / "t.csv"], "digits", 0, tmp_path / "all2.csv",
                           sources=[{**src, "method": "dense", "sparsity": 0.0}])
