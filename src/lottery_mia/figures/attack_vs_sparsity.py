"""Figure 2: attack accuracy and auc by sparsity."""

from __future__ import annotations

import pandas as pd

from .registry import FigureData, register_figure
from .style import (
    save, finish, attack_lines, attack_axes, mean_rows, pyplot, method_order, ACHIEVED_LABEL,
    INTERVAL_NOTE,
)

CAPTION = (
    'Figure 2. Accuracy and AUC of the membership-inference attack by achieved sparsity, a'
    ' line per method (and architecture), mean over seeds, 95% bootstrap intervals over '
    'the attack-test rows.'
)


def figure_attack_vs_sparsity(attacks: pd.DataFrame, sample_size: int, output,
                              attack: str):
    """Attack accuracy and AUC vs the achieved sparsity, a line per (arch, method) starting
    at the dense network. Returns the Figure."""
    sel = mean_rows(attacks, attack)
    sel = sel[sel["sample_size"] == sample_size]
    if sel.empty:
        raise ValueError(f"no attack results at sample size {sample_size} "
                         "(config key report.figure2_sample_size)")
    order = method_order(sel["method"])
    datasets = sorted(sel["dataset"].unique())
    fig, axes = pyplot().subplots(2, len(datasets), figsize=(4.8 * len(datasets), 6.8),
                             squeeze=False)
    for j, ds in enumerate(datasets):
        part = sel[sel["dataset"] == ds]
        for i, metric in enumerate(("accuracy", "auc")):
            attack_lines(axes[i, j], part, "achieved_sparsity", metric, percent_x=True,
                          order=order, from_dense=True)
            finish(axes[i, j], ACHIEVED_LABEL, f"attack {metric} ({attack})",
                    f"{ds}, n={sample_size} ({INTERVAL_NOTE})",
                    chance=0.5)
    attack_axes(axes)
    save(fig, output)
    return fig


@register_figure('figure2', file='figure2_attack_vs_sparsity.png',
                 title='Figure 2. Attack accuracy and AUC by sparsity',
                 caption=CAPTION, tables=('attacks',), scores=None,
                 params=('figure2_sample_size', 'attack'))
def draw(data: FigureData, output):
    return figure_attack_vs_sparsity(data.tables["attacks"], data.params["figure2_sample_size"],
                                     output, data.params["attack"])
