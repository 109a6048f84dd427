"""Figure 9: true-positive rate at a low false-positive rate by sparsity."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..vocabulary import DENSE
from .registry import FigureData, register_figure
from ..stats.metrics import LOW_FPRS
from .style import panels, save, errbar, finish, clip_unit, ACHIEVED_LABEL, INTERVAL_NOTE

CAPTION = (
    "Figure 9. True-positive rate at the lowest false-positive rate that every attack drawn "
    "can measure (of 10%, 1%, 0.1%: at least 10 of its evaluated non-members above the "
    "threshold) vs achieved sparsity, for the dense network and Table 1's ticket method: "
    "the report's attack, the loss attack and the reference-model attacks (mean over seeds, "
    "95% bootstrap intervals; the dotted line is chance, TPR = FPR). Modern audits judge "
    "attacks here; an attack that cannot measure that FPR is left out and named."
)


def lowest_common_fpr(part: pd.DataFrame) -> float | None:
    """The lowest FPR of :data:`LOW_FPRS` at which every row of ``part`` has a TPR (most
    rows measurable), or None."""
    for x in sorted(LOW_FPRS):
        col = f"tpr_at_fpr_{x:g}"
        if col in part and part[col].notna().all():
            return x
    return None


def figure_low_fpr_vs_sparsity(attacks: pd.DataFrame, arch: str, sample_size: int,
                               output, which: list[str] | None = None,
                               method: str = "oneshot"):
    """TPR at a low FPR (with 95% intervals) vs achieved sparsity, one line per attack of
    ``which`` (default: every attack), on the dense network and its ``method`` tickets; the
    FPR is the lowest of :data:`LOW_FPRS` that every attack drawn can measure (attacks that
    measure none are left out and named in the title). Returns the Figure."""
    sel = attacks[(attacks["replicate"].astype(str) == "mean") & (attacks["arch"] == arch)
                  & (attacks["sample_size"] == sample_size)]
    sel = sel[sel["method"].isin([DENSE, method])]
    if which:
        sel = sel[sel["attack"].isin(which)]
    if sel.empty:
        raise ValueError(f"no attack results for {arch} ({method}) at n={sample_size} "
                         "(config keys report.table1_arch, report.figure2_sample_size, "
                         "report.table1_method)")
    datasets = sorted(sel["dataset"].unique())
    fig, axes = panels(len(datasets), width=6.0, height=4.4)
    for ax, ds in zip(axes, datasets):
        part = sel[sel["dataset"] == ds]
        usable = [a for a, g in part.groupby("attack")
                  if lowest_common_fpr(g) is not None]
        left_out = sorted(set(part["attack"]) - set(usable))
        part = part[part["attack"].isin(usable)]
        x = lowest_common_fpr(part) if not part.empty else None
        if x is None:
            ax.text(0.5, 0.5, "n/a: fewer than 10 non-members above the threshold\n"
                    "at every FPR of 10%, 1% and 0.1%", ha="center", va="center",
                    transform=ax.transAxes)
            ax.set_axis_off()
            continue
        metric = f"tpr_at_fpr_{x:g}"
        attacks_here = sorted(part["attack"].unique())
        offset = np.linspace(-0.8, 0.8, len(attacks_here))
        top = 0.0
        for i, (attack, a) in enumerate(part.groupby("attack")):
            a = a.sort_values("achieved_sparsity")
            errbar(ax, a["achieved_sparsity"] * 100 + offset[attacks_here.index(attack)],
                   a[metric], clip_unit(a[f"{metric}_ci_low"]),
                   clip_unit(a[f"{metric}_ci_high"]), color=f"C{i % 10}",
                   label=f"{attack} ({int(a['n_eval_nonmembers'].min())} non-members)",
                   markersize=4)
            top = max(top, float(np.nanmax(a[f"{metric}_ci_high"])))
        ax.axhline(x, color="grey", linestyle=":", linewidth=1, label=f"chance ({x:.0%})")
        ax.set_ylim(0.0, min(1.0, max(top, x) * 1.15 + 0.01))
        note = f"\nnot measurable at {x:.0%}: {', '.join(left_out)}" if left_out else ""
        finish(ax, ACHIEVED_LABEL, f"TPR at {x:.1%} FPR".replace(".0%", "%"),
               f"{ds}, n={sample_size}: {arch} dense and {method} tickets "
               f"({INTERVAL_NOTE}){note}")
    save(fig, output)
    return fig


@register_figure('figure9', file='figure9_tpr_at_low_fpr.png',
                 title='Figure 9. True-positive rate at a low false-positive rate by sparsity',
                 caption=CAPTION, tables=('attacks',), scores=None,
                 params=('arch', 'figure2_sample_size', 'low_fpr_attacks', 'method'))
def draw(data: FigureData, output):
    p = data.params
    return figure_low_fpr_vs_sparsity(data.tables["attacks"], p["arch"], p["figure2_sample_size"],
                                      output, which=p["low_fpr_attacks"], method=p["method"])
