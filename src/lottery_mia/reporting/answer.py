"""The report's first screen: what the run found, in numbers with their intervals, and
what it can and cannot say. Built from the tables the report already reads (verdicts.csv,
attacks.csv, training.csv); pure pandas, no torch."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..vocabulary import DENSE, MEAN, REFERENCE, fmt_ci

# A dataset whose networks say little about the paper's (a few thousand 8x8 images).
QUICK_LOOK = {"digits": "scikit-learn's 1,797 8x8 digit images"}


def _mean_rows(attacks: pd.DataFrame) -> pd.DataFrame:
    return attacks[attacks["replicate"].astype(str) == MEAN]


def strongest_attacks(attacks: pd.DataFrame, values: dict) -> list[dict]:
    """Per dataset: the attack with the highest AUC on Table 1's dense network at the
    dataset's largest attack sample, with its AUC and balanced accuracy (chance 0.5 however
    unbalanced the evaluated rows are) on the dense network and on Table 1's ticket, each
    the mean over seeds with its 95% interval."""
    rows = _mean_rows(attacks)
    arch, method = values.get("arch"), values.get("method")
    sparsity = float(values.get("table1_sparsity", 0.0))
    out = []
    for ds, part in rows[rows["arch"] == arch].groupby("dataset", sort=True):
        n = int(part["sample_size"].max())
        part = part[part["sample_size"] == n]
        dense = part[part["method"] == DENSE]
        ticket = part[(part["method"] == method)
                      & ((part["sparsity"].astype(float) - sparsity).abs() < 1e-9)]
        if dense.empty:
            continue
        best = dense.sort_values("auc", ascending=False).iloc[0]
        t = ticket[ticket["attack"] == best["attack"]]
        t = t.iloc[0] if len(t) else None

        def cell(r, metric):
            if r is None or metric not in r or pd.isna(r[metric]):
                return "n/a"
            return fmt_ci(float(r[metric]), float(r.get(f"{metric}_ci_low", math.nan)),
                          float(r.get(f"{metric}_ci_high", math.nan)))

        out.append({"dataset": ds, "attack": str(best["attack"]), "kind": str(best["kind"]),
                    "sample_size": n, "arch": arch, "method": method, "sparsity": sparsity,
                    "dense_auc": cell(best, "auc"), "ticket_auc": cell(t, "auc"),
                    "dense_balanced_accuracy": cell(best, "balanced_accuracy"),
                    "ticket_balanced_accuracy": cell(t, "balanced_accuracy"),
                    "rows": ("every row its references can judge" if best["kind"] == REFERENCE
                             else "the attack-test rows")})
    return out


def scope_sentences(verdicts: pd.DataFrame, training: pd.DataFrame, values: dict
                    ) -> list[str]:
    """What the run can and cannot say: its data, seeds and attack samples, the power of
    its primary comparisons, and a caveat for a quick-look dataset."""
    out = []
    for ds, part in training.groupby("dataset", sort=True):
        dense = part[part["method"] == DENSE]
        first = dense.iloc[0] if len(dense) else part.iloc[0]
        seeds = int(part["replicate"].nunique())
        sizes = (f"{int(first['n_train'])} members and {int(first['n_test'])} non-members "
                 "per network, " if {"n_train", "n_test"} <= set(part.columns)
                 and pd.notna(first.get("n_train")) else "")
        what = f"{ds}: {sizes}{seeds} training seed(s)"
        if ds in QUICK_LOOK:
            what += (f" ({QUICK_LOOK[ds]}: a quick look at the method, which says little "
                     "about CIFAR- or ImageNet-scale networks)")
        out.append(what + ".")
    primary = verdicts[verdicts["primary"]] if len(verdicts) else verdicts
    if len(primary) and {"power", "seeds_needed", "margin", "attack", "metric",
                         "sample_size"} <= set(primary.columns):
        power = pd.to_numeric(primary["power"], errors="coerce")
        needed = pd.to_numeric(primary["seeds_needed"], errors="coerce")
        margin = pd.to_numeric(primary["margin"], errors="coerce")
        p = primary.iloc[0]
        attacks = " and ".join(dict.fromkeys(primary["attack"].astype(str)))
        sizes = ", ".join(str(int(n)) for n in dict.fromkeys(primary["sample_size"]))
        low, high = f"{power.min():.0%}", f"{power.max():.0%}"
        sentence = (f"The primary comparisons ({attacks} attack, {p['metric']}, n = {sizes}) "
                    f"have a power of {low}" + (f" to {high}" if high != low else "")
                    + f" to show equivalence within ±{margin.max():g}")
        if needed.notna().any() and math.isinf(float(needed.min())):
            sentence += ("; no number of seeds would decide them at these attack-sample "
                         "sizes (the rows are too few for the margin): more rows, not more "
                         "seeds")
        elif needed.notna().any():
            sentence += f"; about {int(needed.min())} seeds would decide the closest one"
        out.append(sentence + ".")
    if len(primary) and "scope" in primary.columns:
        if (primary["scope"] == "these networks").any():
            out.append("With fewer than 3 training seeds a comparison describes those "
                       "networks only: it decides nothing about the method.")
    return out


PAIR_WORDS = {"leaks_more": "the pair leaks more", "leaks_less": "the pair leaks less",
              "equivalent": "the same within the margin", "inconclusive": "not decided"}


def pair_summary(pair_verdicts: pd.DataFrame) -> str:
    """The pair attacks' primary rows (AUC, the largest sample) in one sentence per pair
    attack: against the attack it extends on the stronger single network, over the pruned
    networks it ran on, how many verdicts say the pair leaks more, the same, less or
    nothing, and the range of the differences ('' without pair rows)."""
    if pair_verdicts is None or pair_verdicts.empty or not pair_verdicts["primary"].any():
        return ""
    rows = pair_verdicts[pair_verdicts["primary"].astype(bool)]
    parts = []
    for (attack, base), part in rows.groupby(["attack", "versus_attack"], sort=True):
        counts = part["verdict"].value_counts().to_dict()
        n = len(part)
        lo, hi = float(part["diff"].min()), float(part["diff"].max())
        said = ", ".join(f"{PAIR_WORDS[v]} for {counts[v]}" for v in PAIR_WORDS
                         if counts.get(v))
        spread = f"{lo:+.3f}" if np.isclose(lo, hi) else f"{lo:+.3f} to {hi:+.3f}"
        parts.append(f"{attack} minus {base} on the stronger single network, over {n} "
                     f"pruned network(s): {said} (AUC differences {spread})")
    few = int((rows["scope"] == "these networks").sum())
    tail = (f"; {few} of {len(rows)} comparisons with fewer than 3 training seeds, which "
            "decide nothing" if few else "")
    return "; ".join(parts) + tail + "."


def defence_summary(defence_verdicts: pd.DataFrame) -> str:
    """Per defence, how many defended tickets keep, lose or leave undecided its protection,
    over its settings ('' without defended entries)."""
    from ..defences import parse_label, short_label, strength_order

    if defence_verdicts is None or defence_verdicts.empty:
        return ""
    dv = defence_verdicts.assign(family=[parse_label(d)[0] for d in
                                         defence_verdicts["defence"]])
    parts = []
    for family, part in dv.groupby("family", sort=True):
        counts = part["protection"].value_counts().to_dict()
        said = ", ".join(f"{counts[w]} {w}" for w in ("keeps", "loses", "undecided")
                         if counts.get(w))
        settings = ", ".join(short_label(d).split(" ", 1)[-1] for d in
                             sorted(part["defence"].unique(), key=strength_order))
        parts.append(f"{family} ({settings}): of {len(part)} ticket(s), {said}")
    return ("; ".join(parts) + " (keeps: the defended ticket leaks no more than its "
            "defended dense parent).")
