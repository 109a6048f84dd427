"""Figure 5: roc curves of the attack, dense network vs tickets."""

from __future__ import annotations

import numpy as np

from ..metrics import roc_points
from ..vocabulary import DENSE, evaluated, model_name
from .registry import FigureData, register_figure
from .style import legend_outside, panels, save

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
    for ax, ds in zip(axes, datasets):
        for c in sorted((c for c in curves if c["dataset"] == ds),
                        key=lambda c: (c["arch"], c["method"] != DENSE, c["sparsity"],
                                       c["method"])):
            fpr, tpr = roc_points(c["member"], c["score"])
            ax.plot(np.maximum(fpr, 1e-5), np.maximum(tpr, 1e-5),
                    label=model_name(c["arch"], c["method"], c["sparsity"]))
        lim = 1.0 / max(min(int((~np.asarray(c["member"], bool)).sum()) for c in curves), 1)
        ax.plot([lim, 1], [lim, 1], color="grey", linestyle=":", label="chance")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lim, 1)
        ax.set_ylim(lim, 1)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title(f"{attack} attack, {ds}, n={curves[0]['sample_size']}", fontsize=10)
        ax.grid(alpha=0.3, which="both")
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
