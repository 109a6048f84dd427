"""Figure 3: attack accuracy by attack sample size."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..reporting.tables import estimator_breaks
from ..vocabulary import DENSE
from .registry import FigureData, register_figure
from .style import (panels, save, finish, attack_lines, attack_axes, mean_rows,
                    INTERVAL_NOTE)

CAPTION = (
    'Figure 3. Attack accuracy by the number of samples used (n/2 members, n/2 non-'
    'members; half for training the attack, half for testing it): the dense network and '
    "Table 1's ticket method. A dotted vertical line marks a sample size where the attack "
    "fits another estimator (the SVM's kernel approximation, the MLP's early stopping): the "
    "step there is not a sample-size effect."
)


def figure_attack_vs_sample_size(attacks: pd.DataFrame, sparsity: float, output,
                                 attack: str, method: str):
    """Attack accuracy vs sample size: the dense network and its ``method`` ticket at
    ``sparsity``, a line per (arch, method). Returns the Figure."""
    sel = mean_rows(attacks, attack)
    if np.isclose(sparsity, 0.0):  # the dense network alone
        method = DENSE
    ticket = (sel["method"] == method) & np.isclose(sel["sparsity"], sparsity)
    if not ticket.any():
        raise ValueError(f"no {attack} attack results for the {method} ticket at sparsity "
                         f"{sparsity} (config keys report.figure3_sparsity, "
                         "report.table1_method)")
    sel = sel[ticket | (sel["method"] == DENSE)]
    datasets = sorted(sel["dataset"].unique())
    fig, axes = panels(len(datasets))
    for ax, ds in zip(axes, datasets):
        attack_lines(ax, sel[sel["dataset"] == ds], "sample_size", "accuracy",
                      order=[DENSE, method])
        for a, b, fa, fb in estimator_breaks(attacks, ds, attack):  # not a size effect
            ax.axvline(float(np.sqrt(a * b)), color="grey", linestyle=":", linewidth=1.2)
            ax.annotate(f"estimator changes:\n{fa} → {fb}", (float(np.sqrt(a * b)), 0.02),
                        xycoords=("data", "axes fraction"), fontsize=6, color="dimgrey",
                        rotation=90, ha="right", va="bottom")
        finish(ax, "attack sample size n (members + non-members)",
                f"attack accuracy ({attack})",
                f"{ds}: "
                + ("dense" if method == DENSE else
                   f"dense vs {method} ticket at sparsity {sparsity:g}")
                + f" ({INTERVAL_NOTE})", chance=0.5)
    attack_axes(axes)
    save(fig, output)
    return fig


@register_figure('figure3', file='figure3_attack_vs_sample_size.png',
                 title='Figure 3. Attack accuracy by attack sample size',
                 caption=CAPTION, tables=('attacks',), scores=None,
                 params=('figure3_sparsity', 'attack', 'method'))
def draw(data: FigureData, output):
    p = data.params
    return figure_attack_vs_sample_size(data.tables["attacks"], p["figure3_sparsity"], output,
                                        p["attack"], p["method"])
