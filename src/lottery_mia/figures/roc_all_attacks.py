"""Figure 8: roc curves of every attack on table 1's models."""

from __future__ import annotations

import numpy as np

from ..metrics import roc_points
from ..vocabulary import evaluated, model_name
from .registry import FigureData, register_figure
from .style import panels, save

CAPTION = (
    "Figure 8. ROC curves of every attack on Table 1's dense network and ticket (first "
    'replicate), log-log: solid lines are reference-model attacks (LiRA, RMIA, shadow '
    'models), dashed classifier attacks, dotted threshold attacks.'
)


def figure_roc_all_attacks(curves: list[dict], output):
    """Log-log ROC of every attack, one panel per model (``curves``: dicts with label,
    attack, member, score)."""
    models = list(dict.fromkeys(c["label"] for c in curves))
    fig, axes = panels(len(models), width=5.0, height=4.6)
    for ax, model in zip(axes, models):
        mine = [c for c in curves if c["label"] == model]
        n0 = min(int((~np.asarray(c["member"], bool)).sum()) for c in mine)
        lim = 1.0 / max(n0, 1)
        for i, c in enumerate(sorted(mine, key=lambda c: c["attack"])):
            fpr, tpr = roc_points(c["member"], c["score"])
            style = "-" if c.get("kind") == "reference" else "--" if c.get(
                "kind") == "classifier" else ":"
            ax.plot(np.maximum(fpr, lim / 2), np.maximum(tpr, lim / 2), style,
                    color=f"C{i % 10}", label=c["attack"], linewidth=1.3)
        ax.plot([lim, 1], [lim, 1], color="grey", linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lim / 2, 1)
        ax.set_ylim(lim / 2, 1)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title(f"Fig. 8: every attack, {model}", fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    save(fig, output)
    return fig


@register_figure('figure8', file='figure8_roc_all_attacks.png',
                 title="Figure 8. ROC curves of every attack on Table 1's models",
                 caption=CAPTION, tables=('attacks',), scores='table1',
                 params=())
def draw(data: FigureData, output):
    attacks = data.tables["attacks"]
    kinds = dict(zip(attacks["attack"], attacks["kind"]))
    curves = []
    for m in data.scores:
        label = (f"{m['dataset']} {model_name(m['arch'], m['method'], m['sparsity'])} "
                 f"n={m['sample_size']}")
        for col in [c for c in m if c.startswith("score_")]:
            name = col[len("score_"):]
            rows = evaluated(m["fold"], kinds.get(name))  # the rows it is judged on
            curves.append({"label": label, "attack": name, "kind": kinds.get(name),
                           "member": m["member"][rows], "score": m[col][rows]})
    return figure_roc_all_attacks(curves, output)
