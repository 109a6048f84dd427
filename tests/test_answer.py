"""lottery_mia.reporting.answer: the report's first screen, from the run's own tables."""

from __future__ import annotations

import math

import pandas as pd

from lottery_mia.reporting.answer import scope_sentences, strongest_attacks

VALUES = {"arch": "resnet18", "method": "oneshot", "table1_sparsity": 0.8}


def _attack_row(method, sparsity, attack, kind, auc, n=200, rep="mean"):
    return {"dataset": "digits", "arch": "resnet18", "method": method, "sparsity": sparsity,
            "replicate": rep, "sample_size": n, "attack": attack, "kind": kind,
            "auc": auc, "auc_ci_low": auc - 0.02, "auc_ci_high": auc + 0.02,
            "balanced_accuracy": auc - 0.05, "balanced_accuracy_ci_low": auc - 0.08,
            "balanced_accuracy_ci_high": auc - 0.02}


def test_the_strongest_attack_is_the_dense_networks_best_auc_at_the_largest_sample():
    attacks = pd.DataFrame([
        _attack_row("dense", 0.0, "loss", "threshold", 0.60),
        _attack_row("dense", 0.0, "rmia", "reference", 0.64),
        _attack_row("oneshot", 0.8, "rmia", "reference", 0.70),
        _attack_row("oneshot", 0.8, "loss", "threshold", 0.61),
        _attack_row("dense", 0.0, "loss", "threshold", 0.90, n=100),  # a smaller sample
        _attack_row("dense", 0.0, "rmia", "reference", 0.99, rep="0"),  # a single seed
    ])
    (row,) = strongest_attacks(attacks, VALUES)
    assert (row["attack"], row["kind"], row["sample_size"]) == ("rmia", "reference", 200)
    assert row["dense_auc"] == "0.640 [0.620, 0.660]"
    assert row["ticket_auc"] == "0.700 [0.680, 0.720]"
    assert row["dense_balanced_accuracy"] == "0.590 [0.560, 0.620]"
    assert "references can judge" in row["rows"]
    no_ticket = attacks[attacks["method"] == "dense"]
    assert strongest_attacks(no_ticket, VALUES)[0]["ticket_auc"] == "n/a"


def _training():
    return pd.DataFrame([{"dataset": "digits", "arch": "resnet18", "method": m,
                          "replicate": r, "n_train": 250, "n_test": 1547}
                         for m in ("dense", "oneshot") for r in (0, 1, 2)])


def _verdicts(power, needed, scope="over seeds and rows"):
    return pd.DataFrame([{"primary": True, "attack": "loss", "metric": "auc",
                          "sample_size": 500, "power": p, "seeds_needed": s, "margin": 0.03,
                          "scope": scope} for p, s in zip(power, needed)]
                        + [{"primary": False, "attack": "mlp", "metric": "auc",
                            "sample_size": 100, "power": 0.9, "seeds_needed": 3,
                            "margin": 0.03, "scope": scope}])


def test_the_scope_names_the_data_the_seeds_and_the_power():
    out = scope_sentences(_verdicts([0.01, 0.02], [math.inf, math.inf]), _training(), VALUES)
    assert out[0].startswith("digits: 250 members and 1547 non-members per network, 3 "
                             "training seed(s)")
    assert "quick look" in out[0]
    assert "power of 1% to 2%" in out[1] and "more rows, not more seeds" in out[1]
    out = scope_sentences(_verdicts([0.5], [7]), _training(), VALUES)
    assert "power of 50%" in out[1] and "about 7 seeds" in out[1]
    few = scope_sentences(_verdicts([0.5], [7], scope="these networks"), _training(), VALUES)
    assert "decides nothing" in few[-1]
