"""Figure 6: the attack by class and by correctness."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..vocabulary import model_name
from .registry import FigureData, register_figure
from .style import legend_outside, save, pyplot, INTERVAL_NOTE

CAPTION = (
    "Figure 6 (the paper's future work). Attack accuracy and AUC per true class, and on "
    "samples the model classifies correctly vs incorrectly, for Table 1's dense network "
    'and ticket (mean over seeds, 95% bootstrap intervals). Classes are balanced by '
    'construction; the correct/incorrect slices are not (most misclassified samples are '
    'non-members), so read their AUC. "n/a": the AUC of a slice without members or '
    'without non-members, where it is undefined; an outlined bar marked "<10": a slice '
    'with fewer than 10 members or non-members (its accuracy too when it has none of one '
    'side), whose point value is shown without an interval (too few rows to estimate one).'
)


def figure_slices(slices: pd.DataFrame, output):
    """Per-class and correct/incorrect attack accuracy and AUC of Table 1's models."""
    attacks = list(dict.fromkeys(slices["attack"]))
    fig, axes = pyplot().subplots(len(attacks), 2, figsize=(12, 3.4 * len(attacks)), squeeze=False)
    models = list(dict.fromkeys(zip(slices["arch"], slices["method"], slices["sparsity"])))
    width = 0.8 / max(len(models), 1)
    for i, attack in enumerate(attacks):
        part = slices[slices["attack"] == attack]
        cats = list(dict.fromkeys(
            (f"class {v}" if k == "class" else v) for k, v in zip(part["slice"], part["value"])))
        for j, metric in enumerate(("accuracy", "auc")):
            ax = axes[i, j]
            for k, (arch, method, sp) in enumerate(models):
                m = part[(part["arch"] == arch) & (part["method"] == method)
                         & np.isclose(part["sparsity"], sp)]
                labels = [(f"class {v}" if kk == "class" else v)
                          for kk, v in zip(m["slice"], m["value"])]
                xs = (np.array([cats.index(lbl) for lbl in labels])
                      + (k - (len(models) - 1) / 2) * width)
                ys = m[metric].to_numpy(dtype=float)
                lo = m[f"{metric}_ci_low"].to_numpy(dtype=float)
                hi = m[f"{metric}_ci_high"].to_numpy(dtype=float)
                # a slice too small to estimate: its point value, outlined, no interval
                few = (~m["estimable"].to_numpy(dtype=bool) if "estimable" in m
                       else ~np.isfinite(lo)) & np.isfinite(ys)
                ok = ~few
                yerr = np.vstack([np.nan_to_num(ys - lo), np.nan_to_num(hi - ys)])[:, ok]
                color = f"C{k % 10}"
                ax.bar(xs[ok], np.nan_to_num(ys[ok] - 0.5), bottom=0.5, width=width,
                       yerr=yerr, capsize=2, label=model_name(arch, method, sp),
                       color=color, alpha=0.8)
                if few.any():
                    ax.bar(xs[few], ys[few] - 0.5, bottom=0.5, width=width, fill=False,
                           edgecolor=color, linestyle="--", linewidth=1)
                    for x in xs[few]:  # at the base: a label on top can meet the title
                        ax.text(x, 0.5, "<10", rotation=90, ha="center", va="bottom",
                                fontsize=7, color=color)
                for x in xs[~np.isfinite(ys)]:  # a slice without members or non-members
                    ax.text(x, 0.5, "n/a", rotation=90, ha="center", va="bottom",
                            fontsize=7, color=color)
            ax.axhline(0.5, color="grey", linestyle=":", linewidth=1)
            ax.set_xticks(range(len(cats)), cats, rotation=45, ha="right", fontsize=8)
            ax.set_ylabel(f"attack {metric}")
            n = int(part["sample_size"].iat[0])
            ax.set_title(f"{attack} attack {metric} by slice, n={n} ({INTERVAL_NOTE})",
                         fontsize=10)
            ax.grid(alpha=0.3, axis="y")
            legend_outside(ax)
    save(fig, output)
    return fig


@register_figure('figure6', file='figure6_slices.png',
                 title='Figure 6. The attack by class and by correctness',
                 caption=CAPTION, tables=('slices',), scores=None,
                 params=())
def draw(data: FigureData, output):
    return figure_slices(data.tables["slices"], output)
