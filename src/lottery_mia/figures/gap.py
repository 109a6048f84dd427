"""Figure 7: generalisation gap vs attack success."""

from __future__ import annotations

import pandas as pd

from ..reporting.summaries import gap_correlation
from ..vocabulary import fmt_ci
from .registry import FigureData, register_figure
from .style import save, errbar, finish, pyplot, method_order, method_style, MARKERS

CAPTION = (
    "Figure 7 (the paper's future work). Generalisation gap (train - test accuracy) of "
    "every model against the attack's AUC: one large marker per model, the mean over its "
    "training seeds with the seeds' 95% interval, and each seed as a small dot (the seeds "
    "of one model share its data, attack rows and dense parent, so they are not "
    "independent points), colored by method, with the Spearman rank correlation over the "
    "models."
)


def figure_gap(training: pd.DataFrame, attacks: pd.DataFrame, sample_size: int, output,
               attack: str):
    """Generalisation gap (train - test accuracy) vs attack AUC: one marker per model, the
    mean over its training seeds with the seeds' 95% t interval (what the Spearman rank
    correlation of :func:`lottery_mia.reporting.summaries.gap_correlation` is taken over),
    each seed a small dot beside it. Returns the Figure."""
    from ..stats.metrics import mean_ci
    from ..vocabulary import MODEL_KEYS

    merged, stats = gap_correlation(training, attacks, sample_size, attack)
    rho, lo, hi = stats["spearman_rho"], stats["spearman_rho_ci_low"], \
        stats["spearman_rho_ci_high"]
    fig, ax = pyplot().subplots(figsize=(9.0, 5.4))
    order = method_order(merged["method"])
    archs = sorted(merged["arch"].unique())
    for key, part in merged.groupby(MODEL_KEYS, sort=True):
        arch, method = key[MODEL_KEYS.index("arch")], key[MODEL_KEYS.index("method")]
        style = method_style(method, order)
        if len(archs) > 1:
            style["marker"] = MARKERS[archs.index(arch) % len(MARKERS)]
        auc, a_lo, a_hi = mean_ci(part["auc"].to_numpy())
        label = method if len(archs) == 1 else f"{arch} {method}"
        seen = {h.get_label() for h in ax.get_legend_handles_labels()[0]}
        errbar(ax, [part["generalization_gap"].mean()], [auc], [a_lo], [a_hi],
               linestyle="none", label=None if label in seen else label, **style)
        ax.scatter(part["generalization_gap"], part["auc"], s=9, alpha=0.35,
                   color=style["color"], marker=style["marker"], linewidths=0)
    finish(ax, "generalisation gap (train accuracy - test accuracy)",
           f"attack AUC ({attack})",
           f"n={sample_size}: Spearman rho = {rho:.2f} [{lo:.2f}, {hi:.2f}] "
           f"(p = {stats['p_value']:.2g}) over {stats['models']} models\nlarge markers: "
           f"each model's mean over its {stats['seeds']} seed(s) (95% t interval); small "
           f"dots: the {stats['points']} seeds",
           chance=0.5)
    save(fig, output)
    return fig


def gap_note(tables: dict) -> str:
    """The Spearman correlation in words (printed under the figure)."""
    gap = tables["gap_correlation"]
    return (f"Spearman rank correlation between generalisation gap and {gap.get('attack')} "
            f"attack AUC over {gap['models']} models (each the mean of its "
            f"{gap.get('seeds')} training seed(s); the seeds of a model are not independent "
            "points): rho = "
            + fmt_ci(gap["spearman_rho"], gap["spearman_rho_ci_low"],
                     gap["spearman_rho_ci_high"])
            + f" (95% interval by Fisher's z; p = {gap['p_value']:.2g}).")


@register_figure("figure7", file="figure7_gap_vs_attack.png",
                 title="Figure 7. Generalisation gap vs attack success",
                 caption=CAPTION, tables=("training", "attacks", "gap_correlation"),
                 params=("figure2_sample_size", "attack"), note=gap_note)
def draw(data: FigureData, output):
    return figure_gap(data.tables["training"], data.tables["attacks"],
                      data.params["figure2_sample_size"], output, data.params["attack"])
