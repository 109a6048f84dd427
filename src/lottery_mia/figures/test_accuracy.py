"""Figure 1: test accuracy of the tickets and their controls by sparsity."""

from __future__ import annotations

import pandas as pd

from ..reporting.summaries import method_means
from ..vocabulary import DENSE
from .registry import FigureData, register_figure
from .style import (
    panels, save, errbar, finish, seed_interval, method_order, method_style, ACHIEVED_LABEL,
    INTERVAL_NOTE, clip_unit,
)

CAPTION = (
    'Figure 1. Test accuracy of the tickets and their controls by achieved sparsity, a '
    'line per method, every line starting at the dense network (sparsity 0): mean over the'
    ' replicate seeds with a 95% interval across seeds (Wilson interval for a single '
    'seed; intervals are clipped to [0, 1]); each seed as a cross. An iterative-pruning '
    '(IMP) point sits at the sparsity its round really reached.'
)


def figure_test_accuracy(training: pd.DataFrame, output):
    """Mean test accuracy over replicates vs the mean achieved sparsity, a panel per
    (dataset, arch) and a line per method, each line starting at the shared dense point
    (bars: Student-t interval across seeds, or the Wilson interval of a single model), each
    replicate as a cross. Returns the Figure."""
    tr = training
    means = method_means(tr)
    order = method_order(tr["method"])
    cells = sorted(set(zip(tr["dataset"], tr["arch"])))
    fig, axes = panels(len(cells))
    for ax, (ds, arch) in zip(axes, cells):
        m = means[(means["dataset"] == ds) & (means["arch"] == arch)]
        reps = tr[(tr["dataset"] == ds) & (tr["arch"] == arch)]
        dense = m[m["method"] == DENSE]
        methods = [x for x in order if x != DENSE and x in set(m["method"])]
        for method in methods or ([DENSE] if not dense.empty else []):
            own = m[m["method"] == method]
            part = own if method == DENSE else pd.concat([dense, own])
            part = part.sort_values("achieved_sparsity")
            lo, hi = (clip_unit(v) for v in seed_interval(part, reps))
            errbar(ax, part["achieved_sparsity"] * 100, part["test_acc"], lo, hi,
                    label=f"{method} (mean of {int(own['replicates'].min())})",
                    **method_style(method, order))
        if methods and not dense.empty:  # the shared start, drawn once on top
            lo, hi = (clip_unit(v) for v in seed_interval(dense, reps))
            errbar(ax, dense["achieved_sparsity"] * 100, dense["test_acc"], lo, hi,
                    linestyle="none", zorder=3,
                    label=f"dense (mean of {int(dense['replicates'].min())})",
                    **method_style(DENSE, order))
        for method in [DENSE] + methods:
            r = reps[reps["method"] == method]
            if not r.empty:
                ax.scatter(r["achieved_sparsity"] * 100, r["test_acc"], s=12, alpha=0.5,
                           marker="x", color=method_style(method, order)["color"])
        finish(ax, ACHIEVED_LABEL, "test accuracy (non-members)",
                f"{arch} on {ds}\n({INTERVAL_NOTE}; x: each seed)")
    save(fig, output)
    return fig


@register_figure('figure1', file='figure1_test_accuracy.png',
                 title='Figure 1. Test accuracy of the tickets and their controls by sparsity',
                 caption=CAPTION, tables=('training',), scores=None,
                 params=())
def draw(data: FigureData, output):
    return figure_test_accuracy(data.tables["training"], output)
