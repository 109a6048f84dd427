"""Whether a ticket keeps a defence's protection (``defence_verdicts.csv``): read from the
primary ticket-vs-dense verdicts of each defended dataset entry and of the entry without
the defence on the same data (:func:`defence_verdicts`). Pure pandas: no torch."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..vocabulary import DENSE

DEFENCE_VERDICT_COLUMNS = [
    "dataset", "defence", "undefended", "sample_size", "arch", "method", "ticket_sparsity",
    "attack", "metric", "dense_undefended", "ticket_undefended", "dense", "ticket",
    "protection_dense", "protection_ticket", "verdict_undefended", "verdict", "n_seeds",
    "scope", "diff", "diff_ci_low", "diff_ci_high", "p_holm", "margin", "protection",
    "epsilon_dense", "epsilon_ticket", "sentence",
]
# the ticket under a defence against its dense parent under the same defence
PROTECTION = {"equivalent": "keeps", "leaks_less": "keeps", "leaks_more": "loses",
              "inconclusive": "undecided"}


def defence_verdicts(verdicts: pd.DataFrame, defences: dict, bases: dict,
                     training: pd.DataFrame | None = None) -> pd.DataFrame:
    """Does a ticket keep a defence's protection? For every dataset entry trained with a
    defence (``defences``: entry -> label, 'none' without one) and every primary comparison
    of it in ``verdicts`` (verdicts.csv: the ticket, pruned from the defended dense network
    and retrained with the defence, minus that dense network; over seeds and rows, Holm-
    adjusted in the confirmatory family): the ticket **keeps** the protection when it leaks
    no more than its defended parent (``equivalent`` or ``leaks_less``), **loses** it when
    it leaks more (``leaks_more``), and the run leaves it **undecided** otherwise
    (``inconclusive``, or fewer than 3 seeds). Beside it, from the entry without the
    defence on the same data and split (``bases``: entry -> that entry), the same
    comparison without the defence (same attack, metric and sample size, primary there or
    not) and each network's protection (undefended minus
    defended value of the metric: how much the defence lowered the attack), as points; and
    with ``training`` (training.csv) under DP-SGD each side's privacy budget (the mean over
    seeds of ``epsilon_total``: the ticket's composes its dense run's)."""
    if verdicts is None or verdicts.empty or not bases:
        return pd.DataFrame(columns=DEFENCE_VERDICT_COLUMNS)
    primary = verdicts[verdicts["primary"].astype(bool)]
    key = ["arch", "method", "ticket_sparsity", "attack", "metric", "sample_size"]
    rows = []
    for r in primary.to_dict("records"):
        ds = r["dataset"]
        label = defences.get(ds, "none")
        if label == "none" or ds not in bases:
            continue
        base = verdicts[verdicts["dataset"] == bases[ds]]  # its primary row or another
        for k in key:
            base = base[base[k] == r[k]]
        b = base.iloc[0].to_dict() if len(base) else {}
        undecided = r["scope"] == "these networks"
        protection = "undecided" if undecided else PROTECTION[r["verdict"]]
        dense_u, ticket_u = b.get("dense", np.nan), b.get("ticket", np.nan)
        rows.append({
            "dataset": ds, "defence": label, "undefended": bases[ds],
            "sample_size": r["sample_size"], "arch": r["arch"], "method": r["method"],
            "ticket_sparsity": r["ticket_sparsity"], "attack": r["attack"],
            "metric": r["metric"], "dense_undefended": dense_u,
            "ticket_undefended": ticket_u, "dense": r["dense"], "ticket": r["ticket"],
            "protection_dense": dense_u - r["dense"],
            "protection_ticket": ticket_u - r["ticket"],
            "verdict_undefended": b.get("verdict", "n/a"), "verdict": r["verdict"],
            "n_seeds": r["n_seeds"], "scope": r["scope"], "diff": r["diff"],
            "diff_ci_low": r["diff_ci_low"], "diff_ci_high": r["diff_ci_high"],
            "p_holm": r["p_holm"], "margin": r["margin"], "protection": protection,
            "epsilon_dense": _mean_epsilon(training, ds, r["arch"], DENSE, 0.0),
            "epsilon_ticket": _mean_epsilon(training, ds, r["arch"], r["method"],
                                            r["ticket_sparsity"])})
    if not rows:
        return pd.DataFrame(columns=DEFENCE_VERDICT_COLUMNS)
    for r in rows:
        verb = {"keeps": "keeps", "loses": "loses",
                "undecided": "may keep or lose (this run does not decide)"}[r["protection"]]
        without = ("" if not np.isfinite(r["dense_undefended"]) else
                   f"; without the defence ({r['undefended']}) the values are "
                   f"{r['ticket_undefended']:.3f} vs {r['dense_undefended']:.3f} "
                   f"({r['verdict_undefended']}), so the defence lowered the dense "
                   f"network's by {r['protection_dense']:+.3f} and the ticket's by "
                   f"{r['protection_ticket']:+.3f}")
        over = ("these networks (fewer than 3 seeds: no verdict)"
                if r["scope"] == "these networks" else f"{r['n_seeds']} training seeds "
                "and the attack rows")
        budget = ("" if not np.isfinite(r["epsilon_ticket"]) else
                  f" Its privacy budget is epsilon {r['epsilon_ticket']:.2f} (its dense "
                  f"parent's {r['epsilon_dense']:.2f}).")
        r["sentence"] = (
            f"{r['dataset']} ({r['defence']}): the {r['arch']} {r['method']} ticket at "
            f"sparsity {r['ticket_sparsity']:g} {verb} the defence's protection: under the "
            f"defence its {r['attack']} {r['metric']} at n={r['sample_size']} is "
            f"{r['ticket']:.3f} vs {r['dense']:.3f} for its defended dense parent, a "
            f"difference of {r['diff']:+.3f} (95% CI {r['diff_ci_low']:+.3f} to "
            f"{r['diff_ci_high']:+.3f} over {over}; {r['verdict']}, margin "
            f"+-{r['margin']:g}){without}.{budget}")
    frame = pd.DataFrame(rows).sort_values(["dataset", "arch", "method", "ticket_sparsity"],
                                           kind="stable")
    return frame[DEFENCE_VERDICT_COLUMNS].reset_index(drop=True)


def _mean_epsilon(training: pd.DataFrame | None, ds, arch, method, sparsity) -> float:
    """The mean over seeds of a model's composed DP-SGD budget (nan without one)."""
    if training is None or "epsilon_total" not in training.columns:
        return float("nan")
    rows = training[(training["dataset"] == ds) & (training["arch"] == arch)
                    & (training["method"] == method)
                    & np.isclose(training["sparsity"].astype(float), float(sparsity))]
    values = pd.to_numeric(rows["epsilon_total"], errors="coerce")
    return float(values.mean()) if values.notna().any() else float("nan")
