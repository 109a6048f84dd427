"""Ticket-finding methods in the report's tables: Table 1 picks the configured method, the
ticket-vs-control verdicts find a planted difference (and none where none is planted), and
the report shows them in a 'Tickets and their controls' section, escaped."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lottery_mia.jobs.report import write_report
from lottery_mia.jobs.tables import write_tables
from lottery_mia.stats.metrics import attack_metrics
from lottery_mia.reporting.summaries import write_scores
from lottery_mia.reporting.tables import slices, table1
from lottery_mia.reporting.verdicts import verdict_rows

DS, ARCH, N = "digits", "resnet18", 400
REPLICATES = (0, 1, 2)
MARGINS = {"auc": 0.03, "balanced_accuracy": 0.02, "tpr_at_fpr_0.1": 0.01,
           "tpr_at_fpr_0.01": 0.001, "tpr_at_fpr_0.001": 0.0001}
PRIMARY = {"attack": "auto", "metric": "auc", "sample_size": None}
KINDS = {"dense": "dense", "oneshot": "ticket", "imp": "ticket", "random_reinit": "control"}
# (method, requested sparsity) -> (membership signal of the scores, achieved sparsity,
# test accuracy). The oneshot and imp tickets separate members far better than the
# random_reinit control at 0.8; at 0.5 the ticket and the control are alike.
MODELS = {
    ("dense", 0.0): (1.0, 0.0, 0.95),
    ("oneshot", 0.5): (1.0, 0.5, 0.94),
    ("random_reinit", 0.5): (1.0, 0.5, 0.93),
    ("oneshot", 0.8): (2.0, 0.8, 0.92),
    ("imp", 0.8): (2.0, 0.832, 0.93),
    ("random_reinit", 0.8): (0.0, 0.8, 0.85),
}
EVIL = "<script>alert('m')</script>"


def _scores(tmp_path, method, sparsity, replicate, signal, rng):
    n_train = 100
    member = np.r_[np.ones(N // 2, bool), np.zeros(N // 2, bool), np.ones(n_train // 2, bool),
                   np.zeros(n_train // 2, bool)]
    fold = np.r_[["attack_test"] * N, ["attack_train"] * n_train]
    label = np.arange(len(member)) % 2
    # The same noise values for every model of a replicate, shuffled among the members and
    # among the non-members: models with the same signal have the same attack accuracy and
    # AUC on other row pairings (a true difference of 0, a non-trivial bootstrap spread).
    noise = np.random.default_rng(100 + replicate).normal(size=len(member))
    for block in (member & (fold == "attack_test"), ~member & (fold == "attack_test")):
        idx = np.flatnonzero(block)
        noise[idx] = noise[rng.permutation(idx)]
    score = signal * member + noise
    frame = pd.DataFrame({
        "sample_id": np.arange(len(member)), "member": member, "fold": fold, "label": label,
        "correct": rng.random(len(member)) < 0.8, "score_mlp": score,
        "score_loss": score + rng.normal(scale=0.5, size=len(member)),
    })
    path = tmp_path / f"{method}_{sparsity}_{replicate}.parquet"
    write_scores(frame, {"dataset": DS, "arch": ARCH, "method": method, "sparsity": sparsity,
                         "replicate": replicate, "sample_size": N}, path)
    return path, frame


def _row(method, sparsity, replicate, attack, metrics, achieved, threshold=np.nan):
    row = {"dataset": DS, "arch": ARCH, "method": method, "sparsity": sparsity,
           "replicate": replicate, "sample_size": N, "attack": attack, "kind": "classifier",
           "achieved_sparsity": achieved, "threshold": threshold, "replicates": 2,
           "n_nonmembers": N // 2}
    row.update(n_eval_members=N // 2, n_eval_nonmembers=N // 2, min_fpr=2 / N)
    for k in ("accuracy", "balanced_accuracy", "precision", "auc", "tpr_at_fpr_0.1",
              "tpr_at_fpr_0.01", "tpr_at_fpr_0.001"):
        v = metrics[k]
        row[k], row[f"{k}_ci_low"], row[f"{k}_ci_high"] = v, v - 0.03, v + 0.03
    for k in ("accuracy", "auc"):
        row[f"verdict_{k}"] = "at chance" if row[f"{k}_ci_low"] <= 0.5 else "above chance"
    return row


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Score files, attacks.csv and training.csv of a small synthetic run."""
    tmp_path = tmp_path_factory.mktemp("methods")
    rng = np.random.default_rng(7)
    groups, attack_rows, training_rows = [], [], []
    for (method, sparsity), (signal, achieved, acc) in MODELS.items():
        paths = []
        per_attack = {"mlp": [], "loss": []}
        for r in REPLICATES:
            path, frame = _scores(tmp_path, method, sparsity, r, signal, rng)
            paths.append(str(path))
            test = frame[frame["fold"] == "attack_test"]
            for attack in per_attack:
                thr = signal / 2
                m = attack_metrics(test["member"].to_numpy(), test[f"score_{attack}"].to_numpy(),
                                   thr)
                per_attack[attack].append(m)
                attack_rows.append(_row(method, sparsity, str(r), attack, m, achieved, thr))
            training_rows.append({
                "dataset": DS, "arch": ARCH, "method": method, "method_kind": KINDS[method],
                "sparsity": sparsity,
                "achieved_sparsity": achieved + (0.001 * r if achieved else 0.0),
                "imp_round": 2 if method == "imp" else np.nan, "replicate": r,
                "test_acc": acc + 0.01 * r, "test_acc_ci_low": acc - 0.02,
                "test_acc_ci_high": acc + 0.03, "train_acc": 1.0, "train_acc_ci_low": 0.99,
                "train_acc_ci_high": 1.0, "generalization_gap": 1.0 - acc - 0.01 * r})
        for attack, ms in per_attack.items():
            mean = {k: float(np.mean([m[k] for m in ms])) for k in ms[0]}
            attack_rows.append(_row(method, sparsity, "mean", attack, mean, achieved))
        groups.append({"dataset": DS, "arch": ARCH, "method": method, "sparsity": sparsity,
                       "sample_size": N, "paths": paths})
    attacks = pd.DataFrame(attack_rows)
    training = pd.DataFrame(training_rows)
    attacks.to_csv(tmp_path / "attacks.csv", index=False)
    training.to_csv(tmp_path / "training.csv", index=False)
    attacks = pd.read_csv(tmp_path / "attacks.csv", dtype={"replicate": str})
    return {"dir": tmp_path, "groups": groups, "attacks": attacks, "training": training}


def test_table1_and_verdicts_select_the_requested_method(run):
    attacks = run["attacks"].copy()
    # imp and oneshot score alike by construction: tell their mean rows apart
    imp_mean = (attacks["method"] == "imp") & (attacks["replicate"] == "mean")
    attacks.loc[imp_mean, "accuracy"] = 0.777

    def mean_acc(method):
        sel = attacks[(attacks["method"] == method) & np.isclose(attacks["sparsity"], 0.8)
                      & (attacks["replicate"] == "mean") & (attacks["attack"] == "mlp")]
        return float(sel["accuracy"].iat[0])

    assert mean_acc("imp") != mean_acc("oneshot")
    for method in ("imp", "oneshot", "random_reinit"):
        t = table1(attacks, ARCH, 0.8, "mlp", method=method)
        assert len(t) == 1 and t["method"].iat[0] == method
        assert t["accuracy_ticket"].iat[0] == pytest.approx(mean_acc(method))
        dense = attacks[(attacks["method"] == "dense") & (attacks["replicate"] == "mean")
                        & (attacks["attack"] == "mlp")]
        assert t["accuracy_dense"].iat[0] == pytest.approx(dense["accuracy"].iat[0])
    with pytest.raises(ValueError, match="snip ticket"):
        table1(attacks, ARCH, 0.8, "mlp", method="snip")
    v = verdict_rows(attacks, run["training"], run["groups"], KINDS, ["mlp"], PRIMARY,
                     MARGINS, n_bootstrap=50, seed=0)
    auc = v[(v["metric"] == "auc") & (v["method"] == "random_reinit")
            & np.isclose(v["ticket_sparsity"], 0.8) & (v["attack"] == "mlp")].iloc[0]
    assert auc["diff"] < 0 and auc["diff_ci_high"] < 0
    assert auc["verdict"] == "leaks_less"
    assert "random_reinit network at sparsity 0.8" in auc["sentence"]


def test_write_tables_writes_every_output_with_methods(run):
    d = run["dir"]
    out = {k: d / f"{k}.csv" for k in ("t1", "verdicts", "models", "mv")}
    write_tables(attacks_csv=d / "attacks.csv", score_paths=run["groups"], arch=ARCH,
                 ticket_sparsity=0.8, attack="mlp", margins=MARGINS, primary=PRIMARY,
                 n_bootstrap=50, seed=0, out_table1_csv=out["t1"],
                 out_table1_md=d / "t1.md", out_verdicts=out["verdicts"],
                 out_attack_models=out["models"], verdict_attacks=["mlp"], method="imp",
                 training_csv=d / "training.csv", method_groups=run["groups"],
                 method_kinds=KINDS, out_method_verdicts=out["mv"])
    assert "imp lottery ticket at sparsity 0.8" in (d / "t1.md").read_text()
    v = pd.read_csv(out["verdicts"])
    assert set(v["method"]) == {"imp", "oneshot", "random_reinit"}
    primary = v[v["primary"]]  # one per pruned model: loss (run on both), AUC, n = 400
    assert len(primary) == 5 and set(primary["attack"]) == {"loss"}
    assert set(primary["family"]) == {"confirmatory"}
    assert set(v.loc[~v["primary"], "family"]) == {"exploratory"}
    models = pd.read_csv(out["models"])
    assert set(models["method"]) == {"imp"} and "auc_ticket" in models
    mv = pd.read_csv(out["mv"])
    assert len(mv) == 4 * 2 and {"sentence", "achieved_sparsity_method"} <= set(mv.columns)


def test_slices_carry_the_method(run):
    groups = [g for g in run["groups"] if g["method"] in ("dense", "imp")]
    frame = slices(groups, run["attacks"], ["mlp"], n_bootstrap=20)
    assert set(frame["method"]) == {"dense", "imp"}
    assert set(frame.loc[frame["method"] == "imp", "sparsity"]) == {0.8}


def test_report_shows_the_methods_section_escaped(run):
    from PIL import Image

    from lottery_mia.jobs.summarize import write_gap_correlation
    from lottery_mia.jobs.tables import write_slices

    d = run["dir"]
    t1 = [g for g in run["groups"] if g["method"] in ("dense", "oneshot")]
    write_tables(attacks_csv=d / "attacks.csv", score_paths=run["groups"], arch=ARCH,
                 ticket_sparsity=0.8, attack="mlp", margins=MARGINS, primary=PRIMARY,
                 n_bootstrap=30, seed=0,
                 out_table1_csv=d / "r_t1.csv",
                 out_table1_md=d / "r_t1.md", out_verdicts=d / "r_verdicts.csv",
                 out_attack_models=d / "r_models.csv", verdict_attacks=["mlp"],
                 method="oneshot", training_csv=d / "training.csv", method_groups=run["groups"],
                 method_kinds=KINDS, out_method_verdicts=d / "r_mv.csv")
    write_slices(attacks_csv=d / "attacks.csv", score_paths=t1, slice_attacks=["mlp"],
                 n_bootstrap=20, seed=0, output=d / "r_slices.csv")
    write_gap_correlation(training_csv=d / "training.csv", attacks_csv=d / "attacks.csv",
                          sample_size=N, attack="mlp", output=d / "r_gap.json")
    pd.DataFrame([{"source_arch": ARCH, "source_method": "dense", "source_sparsity": 0.0,
                   "target_arch": ARCH, "target_method": "imp", "target_sparsity": 0.8,
                   "accuracy": 0.6, "accuracy_ci_low": 0.55, "accuracy_ci_high": 0.65,
                   "auc": 0.6, "auc_ci_low": 0.55, "auc_ci_high": 0.65}]).to_csv(
        d / "r_transfer.csv", index=False)
    png = d / "r_fig.png"
    Image.new("RGB", (2, 2)).save(png)
    methods = [{"name": "dense", "kind": "dense", "description": "the dense parent"},
               {"name": "oneshot", "kind": "ticket", "description": EVIL},
               {"name": "imp", "kind": "ticket", "description": "iterative pruning"},
               {"name": "random_reinit", "kind": "control", "description": "ticket mask, "
                "fresh random weights"}]
    out = d / "report.html"
    write_report(summary={"training": d / "training.csv", "attacks": d / "attacks.csv",
                          "transfer": d / "r_transfer.csv", "slices": d / "r_slices.csv",
                          "gap_correlation": d / "r_gap.json"},
                 report_tables={"table1_csv": d / "r_t1.csv", "verdicts": d / "r_verdicts.csv",
                                "attack_models": d / "r_models.csv",
                                "method_verdicts": d / "r_mv.csv"},
                 figures={"figure1": png}, config={"report": {"table1_method": "oneshot"}},
                 values={"attack": "mlp", "arch": ARCH, "method": "oneshot",
                         "table1_sparsity": 0.8, "margins": MARGINS,
                         "primary": PRIMARY}, methods=methods,
                 output=out)
    html = out.read_text()
    assert '<h2 id="methods">Tickets and their controls</h2>' in html
    assert html.index("Tickets and their controls") < html.index("Figure 1")
    assert "<script" not in html and "&lt;script&gt;alert" in html
    assert "ticket mask, fresh random weights" in html
    mv = pd.read_csv(d / "r_mv.csv")
    assert all(s.replace("'", "&#x27;") in html for s in mv["sentence"])
    # the achieved sparsity of imp and its seed-interval test accuracy
    assert "0.8330" in html and "0.9400 [" in html
    # the random_reinit control at 0.8 attacks at chance: marked
    assert "(chance)" in html.split("Verdicts: tickets vs controls")[1]
    assert "oneshot lottery ticket at sparsity 0.8" in html
    json.loads((d / "r_gap.json").read_text())


def test_the_attack_model_table_says_what_each_classifier_fitted(run):
    """An SVM above ``attack.svm.exact_max_rows`` is an approximation: what each classifier
    fitted reaches the attack-model table and its report view ('fitted'); threshold attacks
    fit nothing, and a table where nothing was fitted has no such column."""
    from lottery_mia.reporting.report import attack_models_view
    from lottery_mia.reporting.tables import attack_model_table
    from lottery_mia.vocabulary import fit_text

    assert fit_text({"estimator": "SVC", "exact": True, "converged": True}) == "SVC"
    assert (fit_text({"estimator": "MLPClassifier", "early_stopping": True,
                      "converged": False}) == "MLPClassifier, early stopping, not converged")
    assert fit_text({"attack": "loss", "estimator": float("nan")}) == ""
    attacks = run["attacks"].copy()
    approx = "Nystroem(rbf, 1000 components)+LinearSVC"
    attacks["fit"] = np.where(attacks["attack"] == "mlp", approx, None)
    table = attack_model_table(attacks, ARCH, 0.8, "oneshot")
    view = attack_models_view(table)
    fitted = dict(zip(view["attack"], view["fitted"]))
    assert fitted == {"mlp": approx, "loss": ""}
    plain = attack_models_view(attack_model_table(run["attacks"], ARCH, 0.8, "oneshot"))
    assert "fitted" not in plain


def test_the_attack_model_view_gives_each_attacks_cost_and_only_the_sides_it_ran_on(run):
    """Each attack's cost (seconds to fit and score; a reference attack's K reference
    networks beside it), and no empty dense row for an attack that ran on the ticket only
    (a pair attack)."""
    from lottery_mia.reporting.report import attack_models_view
    from lottery_mia.reporting.tables import attack_model_table

    attacks = run["attacks"].copy()
    attacks["attack_seconds"] = 0.25
    pair = attacks[(attacks["attack"] == "mlp") & (attacks["method"] == "oneshot")].copy()
    pair["attack"] = "pair_mlp"
    attacks = pd.concat([attacks, pair], ignore_index=True)
    view = attack_models_view(attack_model_table(attacks, ARCH, 0.8, "oneshot"))
    rows = view[view["attack"] == "pair_mlp"]
    assert list(rows["model"]) == ["ticket"]
    assert set(view["cost (s)"]) == {"0.25"}
    ref = attacks.assign(n_references=4.0)
    view = attack_models_view(attack_model_table(ref, ARCH, 0.8, "oneshot"))
    assert set(view["cost (s)"]) == {"0.25 + 4 reference networks"}
