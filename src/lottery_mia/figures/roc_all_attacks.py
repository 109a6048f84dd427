"""Figure 8: roc curves of every attack on table 1's models."""

from __future__ import annotations

import numpy as np

from ..vocabulary import evaluated, model_name
from .registry import FigureData, register_figure
from .style import legend_outside, pyplot, roc_panel, save

CAPTION = (
    "Figure 8. ROC curves of every attack on Table 1's dense network and ticket (first "
    "replicate), log-log, a row of panels per kind of attack (classifier, threshold, "
    "reference-model) with at most six lines each. Classifier and threshold attacks are "
    "evaluated on the attack-test rows, reference-model attacks on the rows their "
    "references can judge (IN for some reference, OUT for another) outside the attack-"
    "train fold; the "
    "dotted diagonal is chance and the smallest FPR drawn is 1 / the panel's non-members."
)

KIND_ORDER = ("classifier", "threshold", "reference")
KIND_TITLE = {"classifier": "classifier attacks", "threshold": "threshold attacks",
              "reference": "reference-model attacks"}
PER_PANEL = 6
# Six lines a reader can tell apart: colour-blind-safe colours, each with its own dash.
LINE_STYLES = (("#0072B2", "-"), ("#D55E00", "--"), ("#009E73", "-."), ("#CC79A7", ":"),
               ("#E69F00", (0, (5, 1, 1, 1))), ("#56B4E9", (0, (3, 1, 1, 1, 1, 1))))


def attack_rows(curves: list[dict]) -> list[tuple[str, list[str]]]:
    """(row title, attacks) per row of panels: the attacks of each kind, in chunks of at most
    :data:`PER_PANEL`."""
    kinds = {c["attack"]: c.get("kind") or "other" for c in curves}
    rows = []
    for kind in list(KIND_ORDER) + sorted(set(kinds.values()) - set(KIND_ORDER)):
        names = sorted(a for a, k in kinds.items() if k == kind)
        for i in range(0, len(names), PER_PANEL):
            rows.append((KIND_TITLE.get(kind, f"{kind} attacks"), names[i:i + PER_PANEL]))
    return rows


def figure_roc_all_attacks(curves: list[dict], output):
    """Log-log ROC of every attack: a column per model, a row per kind of attack
    (``curves``: dicts with label, attack, kind, member, score). Returns the Figure."""
    models = list(dict.fromkeys(c["label"] for c in curves))
    rows = attack_rows(curves)
    fig, axes = pyplot().subplots(len(rows), len(models), squeeze=False,
                                  figsize=(4.4 * len(models) + 1.6, 3.8 * len(rows)))
    for r, (title, names) in enumerate(rows):
        for col, model in enumerate(models):
            ax = axes[r, col]
            mine = [c for c in curves if c["label"] == model and c["attack"] in names]
            n0 = min((int((~np.asarray(c["member"], bool)).sum()) for c in mine), default=1)
            lines = []
            for c in mine:
                color, dash = LINE_STYLES[names.index(c["attack"]) % len(LINE_STYLES)]
                lines.append((c["member"], c["score"], dict(color=color, linestyle=dash,
                                                            label=c["attack"], linewidth=1.5)))
            roc_panel(ax, lines, n0, f"{title}: {model}\n({n0} non-members evaluated)")
        legend_outside(axes[r, -1])
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
            rows = evaluated(m["fold"], kinds.get(name), m[col])  # the rows it is judged on
            curves.append({"label": label, "attack": name, "kind": kinds.get(name),
                           "member": m["member"][rows], "score": m[col][rows]})
    return figure_roc_all_attacks(curves, output)
