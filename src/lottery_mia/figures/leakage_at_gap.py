"""Figure 10: the primary answers, raw and at the same generalisation gap."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .registry import FigureData, register_figure
from .style import pyplot, save

CAPTION = (
    "Figure 10. The primary comparisons (report.primary), pruned minus dense: the raw "
    "difference (filled) with its 95% interval over training seeds and attack rows, and "
    "the difference at the same generalisation gap (open: each seed's attack metric of "
    "every model regressed on its train - test accuracy gap, the pruned network's "
    "residual minus the dense one's, 95% interval over seeds). The shaded band is the "
    "equivalence margin; a point without an open twin had too few models per seed for a "
    "slope."
)


def figure_leakage_at_gap(verdicts: pd.DataFrame, output):
    """A forest plot of the primary rows of ``verdicts`` (verdicts.csv)."""
    rows = verdicts[verdicts["primary"].astype(bool)].reset_index(drop=True)
    if rows.empty:
        raise ValueError("verdicts.csv has no primary comparison (config key "
                         "report.primary: no such attack ran on a dense and a pruned model)")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9.0, 1.2 + 0.55 * len(rows)))
    y = np.arange(len(rows))[::-1].astype(float)
    margin = float(rows["margin"].max())
    ax.axvspan(-margin, margin, color="grey", alpha=0.15, lw=0,
               label=f"equivalence margin (±{margin:g})")
    ax.axvline(0.0, color="grey", linewidth=0.8)
    for offset, cols, style, label in (
            (0.12, ("diff", "diff_ci_low", "diff_ci_high"), dict(fmt="o", color="C0"),
             "raw difference"),
            (-0.12, ("diff_at_gap", "diff_at_gap_ci_low", "diff_at_gap_ci_high"),
             dict(fmt="o", color="C1", markerfacecolor="white"), "at the same gap")):
        v, lo, hi = (rows[c].to_numpy(dtype=float) for c in cols)
        ok = np.isfinite(v)
        err = np.vstack([np.where(np.isfinite(lo), v - lo, 0.0),
                         np.where(np.isfinite(hi), hi - v, 0.0)])[:, ok]
        ax.errorbar(v[ok], y[ok] + offset, xerr=err, capsize=3, label=label, **style)
    ax.set_yticks(y)
    ax.set_yticklabels([f"{r.dataset} {r.arch} {r.method} s={r.ticket_sparsity:g}\n"
                        f"{r.attack} {r.metric}, n={r.sample_size}: {r.verdict}"
                        for r in rows.itertuples(index=False)], fontsize=8)
    ax.set_xlabel("pruned - dense (attack metric)")
    seeds = sorted(set(int(s) for s in rows["n_seeds"]))
    ax.set_title(f"Primary comparisons over {', '.join(map(str, seeds))} training seed(s)",
                 fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.3 / len(rows)),
              ncol=3, frameon=False)
    save(fig, output)
    return fig


@register_figure("figure10", file="figure10_leakage_at_gap.png",
                 title="Figure 10. The primary answers, raw and at the same generalisation gap",
                 caption=CAPTION, tables=("verdicts",), params=())
def draw(data: FigureData, output):
    return figure_leakage_at_gap(data.tables["verdicts"], output)
