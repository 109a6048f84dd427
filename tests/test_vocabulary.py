"""The words of the result tables (lottery_mia.vocabulary): which rows an attack is judged
on, a network's identity, model names and how a number with its interval is written."""

from __future__ import annotations

import numpy as np
import pytest

from lottery_mia.vocabulary import (evaluated, fit_text, fmt_ci, model_name,
                                    network_identity)


def test_classifier_and_threshold_attacks_are_judged_on_attack_test_rows():
    fold = np.array(["attack_train", "attack_test", "outside", "attack_test"])
    for kind in ("classifier", "threshold"):
        assert evaluated(fold, kind).tolist() == [False, True, False, True]


def test_reference_attacks_are_judged_on_scored_rows_outside_attack_train():
    fold = np.array(["attack_train", "attack_test", "outside", "outside"])
    score = np.array([0.3, 0.1, np.nan, 0.7])  # nan: outside the inclusion design
    assert evaluated(fold, "reference", score).tolist() == [False, True, False, True]
    with pytest.raises(ValueError, match="depend on its scores"):
        evaluated(fold, "reference")


def test_a_network_identity_is_one_record():
    rec = network_identity("digits", "resnet18", np.int64(3), "oneshot", np.float32(0.8), 2)
    assert rec == {"dataset": "digits", "arch": "resnet18", "seed": 3, "method": "oneshot",
                   "sparsity": pytest.approx(0.8), "imp_round": 2}
    assert type(rec["seed"]) is int and type(rec["sparsity"]) is float


def test_names_and_numbers_read_as_the_report_writes_them():
    assert model_name("resnet18", "dense", 0.0) == "resnet18 dense"
    assert model_name("resnet18", "imp", 0.8) == "resnet18 imp s=0.8"
    assert fmt_ci(0.5744, 0.5651, 0.5839) == "0.574 [0.565, 0.584]"
    assert fmt_ci(0.5, float("nan"), float("nan")) == "0.500"
    assert fmt_ci(float("nan"), 0.1, 0.2) == "n/a"
    assert fit_text({"estimator": "MLPClassifier", "early_stopping": True}) == \
        "MLPClassifier, early stopping"
    assert fit_text({"attack": "loss"}) == ""
