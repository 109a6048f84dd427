"""Figure 11: the privacy-utility frontier of the defences, dense networks and tickets."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..defences import parse_label, short_label, strength_order
from ..vocabulary import DENSE, model_name
from .registry import FigureData, register_figure
from .style import (errbar, finish, legend_outside, method_order, method_style, panels,
                    save, INTERVAL_NOTE)

CAPTION = (
    "Figure 11. The privacy-utility frontier: the primary attack's AUC (left) and its TPR "
    "at 10% FPR (right) against the network's test accuracy, one point per dataset entry "
    "(each a training-time defence at one strength, or none; labelled when there are "
    "several: PPB by its strength lambda, DP-SGD by its target epsilon per training run) "
    "and model (the dense network and every pruned model of Table 1's architecture that "
    "the attack ran on; a method's sparsities differ in how its marker is filled), the "
    "mean over seeds with the attack's 95% bootstrap interval; a line joins each model's "
    "points under one defence, from none to its strongest setting (a line style per "
    "defence). A defence that works moves points down; a ticket that keeps its dense "
    "network's protection sits with it."
)
LINESTYLES = ("-", "--", ":", "-.")  # one per defence


def frontier_points(training: pd.DataFrame, attacks: pd.DataFrame, arch: str,
                    sample_size: int, attack: str, defences: dict) -> pd.DataFrame:
    """One row per (dataset, method, sparsity) of ``arch``: the defence label, the mean test
    accuracy over seeds, and ``attack``'s mean-row AUC and TPR at 10% FPR (with intervals)
    at ``sample_size`` (each dataset's largest below it when it has no such size)."""
    att = attacks[(attacks["replicate"].astype(str) == "mean") & (attacks["arch"] == arch)
                  & (attacks["attack"] == attack)]
    if att.empty:
        raise ValueError(f"Figure 11: no {attack} results on {arch} (config keys "
                         "report.primary, report.table1_arch)")
    tr = training[training["arch"] == arch]
    rows = []
    for (ds, method, sparsity), part in att.groupby(["dataset", "method", "sparsity"]):
        sizes = sorted(part["sample_size"].unique())
        n = sample_size if sample_size in sizes else max(sizes)
        r = part[part["sample_size"] == n].iloc[0]
        acc = tr[(tr["dataset"] == ds) & (tr["method"] == method)
                 & np.isclose(tr["sparsity"].astype(float), float(sparsity))]["test_acc"]
        rows.append({"dataset": ds, "defence": defences.get(ds, "none"), "method": method,
                     "sparsity": float(sparsity), "sample_size": int(n),
                     "test_acc": float(acc.mean()) if len(acc) else np.nan,
                     "seeds": int(len(acc)),
                     **{k: r.get(k, np.nan) for k in (
                         "auc", "auc_ci_low", "auc_ci_high", "tpr_at_fpr_0.1",
                         "tpr_at_fpr_0.1_ci_low", "tpr_at_fpr_0.1_ci_high")}})
    out = pd.DataFrame(rows)
    out["order"] = [strength_order(d) for d in out["defence"]]
    out["family_order"] = [parse_label(d)[0] for d in out["defence"]]
    out.loc[out["family_order"] == "none", "family_order"] = ""
    return out.sort_values(["method", "sparsity", "family_order", "order", "dataset"]) \
        .drop(columns="family_order").reset_index(drop=True)


def primary_attack(attacks: pd.DataFrame, primary: dict) -> str:
    """report.primary's attack: "auto" resolves as the verdicts do (the first of their
    declared order that ran)."""
    from ..reporting.verdicts import PRIMARY_ORDER

    want = (primary or {}).get("attack", "auto")
    if want != "auto":
        return want
    ran = set(attacks["attack"])
    return next((a for a in PRIMARY_ORDER if a in ran), "loss")


def figure_frontier(training: pd.DataFrame, attacks: pd.DataFrame, arch: str,
                    sample_size: int, attack: str, defences: dict, output):
    """Attack AUC and TPR at 10% FPR against test accuracy (see :data:`CAPTION`)."""
    pts = frontier_points(training, attacks, arch, sample_size, attack, defences)
    fig, axes = panels(2, width=5.6, height=4.4)
    order = method_order(pts["method"])
    labelled = pts["defence"].nunique() > 1  # one entry without a defence: no labels
    pts["family"] = [parse_label(d)[0] for d in pts["defence"]]
    families = sorted(set(pts["family"]) - {"none"})
    fills = ("none", "full", "left", "right", "bottom", "top")  # a method's sparsities
    for ax, (metric, label, chance) in zip(axes, (
            ("auc", f"attack AUC ({attack})", 0.5),
            ("tpr_at_fpr_0.1", f"TPR at 10% FPR ({attack})", 0.1))):
        for (method, sparsity), line in pts.groupby(["method", "sparsity"], sort=False):
            style = method_style(method, order)
            name = "dense" if method == DENSE else model_name(arch, method, sparsity) \
                .split(" ", 1)[1]
            sps = sorted(pts.loc[pts["method"] == method, "sparsity"].unique())
            errbar(ax, line["test_acc"], line[metric], line[f"{metric}_ci_low"],
                   line[f"{metric}_ci_high"], label=name, linestyle="none",
                   markersize=6, fillstyle=fills[sps.index(sparsity) % len(fills)]
                   if method != DENSE else "full", **style)
            for i, family in enumerate(families):
                part = line[line["family"].isin(["none", family])]
                ax.plot(part["test_acc"], part[metric], linestyle=LINESTYLES[i % 4],
                        linewidth=1, color=style["color"])
            for _, r in (line.iterrows() if labelled else ()):
                x, y = float(r["test_acc"]), float(r[metric])
                if np.isfinite(x) and np.isfinite(y):
                    ax.annotate(short_label(r["defence"]), (x, y), fontsize=6,
                                xytext=(3, 3), textcoords="offset points",
                                color=style["color"])
        n = sorted(pts["sample_size"].unique())
        finish(ax, "test accuracy (mean over seeds)", label,
               f"{arch}, n={', '.join(map(str, n))} ({INTERVAL_NOTE})", chance=chance,
               legend=False)
    legend_outside(axes[-1])
    save(fig, output)
    return fig


@register_figure("figure11", file="figure11_privacy_utility.png",
                 title="Figure 11. Privacy-utility frontier of the defences",
                 caption=CAPTION, tables=("training", "attacks"),
                 params=("arch", "figure2_sample_size", "primary", "defences"))
def draw(data: FigureData, output):
    p = data.params
    attacks = data.tables["attacks"]
    return figure_frontier(data.tables["training"], attacks, p["arch"],
                           p["figure2_sample_size"], primary_attack(attacks, p["primary"]),
                           dict(p["defences"]), output)
