"""Figure 9: true-positive rate at 1% false-positive rate by sparsity."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..vocabulary import DENSE
from .registry import FigureData, register_figure
from .style import panels, save, errbar, finish, ACHIEVED_LABEL, INTERVAL_NOTE

CAPTION = (
    'Figure 9. True-positive rate at 1% false-positive rate vs achieved sparsity (the '
    "dense network and Table 1's ticket method), for the report's attack, the loss attack "
    'and the reference-model attacks (mean over seeds, 95% bootstrap intervals; the dotted'
    ' line is chance). Modern audits judge attacks here.'
)


def figure_low_fpr_vs_sparsity(attacks: pd.DataFrame, arch: str, sample_size: int,
                               output, metric: str = "tpr_at_fpr_0.01",
                               which: list[str] | None = None,
                               method: str = "oneshot"):
    """TPR at 1% FPR (with 95% intervals) vs achieved sparsity, one line per attack of
    ``which`` (default: every attack), on the dense network and its ``method`` tickets.
    Returns the Figure."""
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
        attacks_here = sorted(part["attack"].unique())
        offset = np.linspace(-0.8, 0.8, len(attacks_here))
        for i, (attack, a) in enumerate(part.groupby("attack")):
            a = a.sort_values("achieved_sparsity")
            errbar(ax, a["achieved_sparsity"] * 100 + offset[attacks_here.index(attack)],
                    a[metric],
                    a[f"{metric}_ci_low"], a[f"{metric}_ci_high"], color=f"C{i % 10}",
                    label=attack, markersize=4)
        n0 = int(part["n_nonmembers"].iloc[0])
        ax.axhline(0.01, color="grey", linestyle=":", linewidth=1, label="chance (1%)")
        ax.set_yscale("symlog", linthresh=0.01)
        finish(ax, ACHIEVED_LABEL, "TPR at 1% FPR",
                f"Fig. 9: low-FPR attack power, {ds}, n={sample_size}\n"
                f"{arch} dense and {method} tickets\n"
                f"({n0} non-members in attack-test; {INTERVAL_NOTE})")
        ax.legend(fontsize=7, ncol=2)
    save(fig, output)
    return fig


@register_figure('figure9', file='figure9_tpr_at_low_fpr.png',
                 title='Figure 9. True-positive rate at 1% false-positive rate by sparsity',
                 caption=CAPTION, tables=('attacks',), scores=None,
                 params=('arch', 'figure2_sample_size', 'low_fpr_attacks', 'method'))
def draw(data: FigureData, output):
    p = data.params
    return figure_low_fpr_vs_sparsity(data.tables["attacks"], p["arch"], p["figure2_sample_size"],
                                      output, which=p["low_fpr_attacks"], method=p["method"])
