"""Whether a defended ticket keeps its defence's protection
(lottery_mia.reporting.protection): keeps, loses or undecided from the defended entry's
primary comparison, beside the undefended entry's."""

from __future__ import annotations

import pytest


def _verdict_row(ds, verdict, dense, ticket, diff, scope="seeds and rows", n_seeds=3):
    return {"dataset": ds, "sample_size": 500, "arch": "resnet18", "method": "oneshot",
            "ticket_sparsity": 0.8, "attack": "quantile", "metric": "auc", "primary": True,
            "dense": dense, "ticket": ticket, "verdict": verdict, "n_seeds": n_seeds,
            "scope": scope, "diff": diff, "diff_ci_low": diff - 0.02,
            "diff_ci_high": diff + 0.02, "p_holm": 0.5, "margin": 0.03}


def test_a_defended_ticket_keeps_loses_or_leaves_undecided_the_protection():
    """The protection verdict reads the defended entry's primary comparison (ticket vs its
    defended dense parent): equivalent or leaks_less keep, leaks_more loses, inconclusive or
    fewer than 3 seeds leave it undecided; the undefended entry gives each network's drop."""
    import pandas as pd

    from lottery_mia.reporting.answer import defence_summary
    from lottery_mia.reporting.protection import defence_verdicts

    rows = [_verdict_row("digits", "equivalent", 0.62, 0.63, 0.01),
            _verdict_row("d_a", "equivalent", 0.57, 0.58, 0.01),
            _verdict_row("d_b", "leaks_more", 0.55, 0.61, 0.06),
            _verdict_row("d_c", "leaks_less", 0.58, 0.55, -0.03),
            _verdict_row("d_d", "inconclusive", 0.56, 0.57, 0.01),
            _verdict_row("d_e", "equivalent", 0.56, 0.56, 0.0, scope="these networks",
                         n_seeds=1)]
    not_primary = {**_verdict_row("d_a", "leaks_more", 0.5, 0.9, 0.4), "primary": False}
    verdicts = pd.DataFrame(rows + [not_primary])
    labels = {"digits": "none", **{d: f"ppb (strength={i})" for i, d in
                                   enumerate(["d_a", "d_b", "d_c", "d_d", "d_e"], 1)}}
    bases = {d: "digits" for d in labels if d != "digits"}
    dv = defence_verdicts(verdicts, labels, bases).set_index("dataset")
    assert list(dv.index) == ["d_a", "d_b", "d_c", "d_d", "d_e"]  # primary rows only
    assert dv["protection"].to_dict() == {"d_a": "keeps", "d_b": "loses", "d_c": "keeps",
                                          "d_d": "undecided", "d_e": "undecided"}
    assert dv.loc["d_a", "protection_dense"] == pytest.approx(0.05)
    assert dv.loc["d_a", "protection_ticket"] == pytest.approx(0.05)
    assert dv.loc["d_b", "protection_ticket"] == pytest.approx(0.02)
    assert (dv["verdict_undefended"] == "equivalent").all()
    assert "loses the defence's protection" in dv.loc["d_b", "sentence"]
    assert "+0.060 (95% CI +0.040 to +0.080" in dv.loc["d_b", "sentence"]
    summary = defence_summary(dv.reset_index())
    # one line per defence over its settings, by strength
    assert summary.startswith("ppb (λ=1, λ=2, λ=3, λ=4, λ=5): of 5 ticket(s), 2 keeps, "
                              "1 loses, 2 undecided")
    # no defended entry, or none with an undefended twin: an empty table with its columns
    assert defence_verdicts(verdicts, {"digits": "none"}, {}).empty
    assert defence_summary(defence_verdicts(verdicts, labels, {})) == ""
