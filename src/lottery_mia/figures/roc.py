"""Figure 5: roc curves of the attack, dense network vs tickets."""

from __future__ import annotations

import numpy as np

from ..vocabulary import DENSE, evaluated, model_name
from .registry import FigureData, register_figure
from .style import legend_outside, panels, roc_panel, save

CAPTION = (
    'Figure 5 (extension). ROC curves of the attack on log-log axes (first replicate); the'
    ' low false-positive region is where membership inference matters. The smallest '
    'measurable FPR is 1 / the number of non-members.'
)


def figure_roc(curves: list[dict], output, attack: str):
    """``curves``: dicts with dataset, arch, method, sparsity, sample_size, member, score
    (attack_test). Returns the Figure."""
    datasets = sorted({c["dataset"] for c in curves})
    fig, axes = panels(len(datasets), width=4.8, height=4.4)
    n0 = min(int((~np.asarray(c["member"], bool)).sum()) for c in curves)
    for ax, ds in zip(axes, datasets):
        mine = sorted((c for c in curves if c["dataset"] == ds),
                      key=lambda c: (c["arch"], c["method"] != DENSE, c["sparsity"],
                                     c["method"]))
        roc_panel(ax, [(c["member"], c["score"],
                        {"label": model_name(c["arch"], c["method"], c["sparsity"])})
                       for c in mine], n0,
                  f"{attack} attack, {ds}, n={curves[0]['sample_size']}", fontsize=10)
        legend_outside(ax)
    save(fig, output)
    return fig


@register_figure('figure5', file='figure5_attack_roc.png',
                 title='Figure 5. ROC curves of the attack, dense network vs tickets',
                 caption=CAPTION, tables=(), scores='roc',
                 params=('attack',))
def draw(data: FigureData, output):
    a = data.params["attack"]  # a classifier or threshold attack: its attack-test rows
    curves = []
    for c in data.scores:
        test = evaluated(c["fold"], "classifier")
        curves.append({**c, "member": c["member"][test], "score": c[f"score_{a}"][test]})
    return figure_roc(curves, output, a)
