"""Figure 4: attack transfer between models."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..vocabulary import DENSE, model_name
from .registry import FigureData, register_figure
from .style import save, pyplot

# The colour scale is fixed and centred at chance, so that noise around 0.5 looks like
# nothing and the same colour means the same accuracy in every run.
HALF_RANGE = 0.3
CAPTION = (
    "Figure 4. Attack transfer: an attack trained on the source model's confidences, "
    "evaluated on the target model's (first replicate). The diagonal is the base case; '~'"
    " marks cells whose 95% interval covers chance. The colour scale is fixed at "
    f"{0.5 - HALF_RANGE:.1f}-{0.5 + HALF_RANGE:.1f}, centred at chance (0.5, white): red "
    "above chance, blue below; values outside the range take its end colours."
)


def figure_transfer(transfer: pd.DataFrame, output, metric: str = "accuracy"):
    src_keys = list(zip(transfer["source_arch"], transfer["source_method"],
                        transfer["source_sparsity"]))
    tgt_keys = list(zip(transfer["target_arch"], transfer["target_method"],
                        transfer["target_sparsity"]))
    frame = transfer.assign(source=[model_name(*k) for k in src_keys],
                            target=[model_name(*k) for k in tgt_keys])
    ranked = sorted(set(src_keys) | set(tgt_keys),
                    key=lambda k: (k[0], k[1] != DENSE, float(k[2]), k[1]))
    order = list(dict.fromkeys(model_name(*k) for k in ranked))
    grid = frame.pivot(index="source", columns="target", values=metric).reindex(
        index=order, columns=order)
    n = len(order)
    at_chance = set()
    if f"{metric}_ci_low" in frame:
        for r in frame.itertuples(index=False):
            lo, hi = getattr(r, f"{metric}_ci_low"), getattr(r, f"{metric}_ci_high")
            if lo <= 0.5 <= hi:
                at_chance.add((order.index(r.source), order.index(r.target)))
    fig, ax = pyplot().subplots(figsize=(1.0 + 0.75 * n + 2, 1.0 + 0.6 * n + 1.5))
    im = ax.imshow(grid.to_numpy(dtype=float), cmap="RdBu_r", vmin=0.5 - HALF_RANGE,
                   vmax=0.5 + HALF_RANGE)
    ax.set_xticks(range(n), order, rotation=45, ha="right")
    ax.set_yticks(range(n), order)
    ax.set_xlabel("target (model attacked)")
    ax.set_ylabel("source (attack trained on)")
    ds = ", ".join(sorted(transfer["dataset"].unique())) if "dataset" in transfer else ""
    ax.set_title(f"Attack transfer ({metric}), {ds}\n'~': 95% CI covers chance (0.5)",
                 fontsize=10)
    for i in range(n):
        for j in range(n):
            v = grid.iat[i, j]
            if np.isfinite(v):
                mark = "~" if (i, j) in at_chance else ""
                ax.text(j, i, f"{mark}{v:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if abs(v - 0.5) > 0.6 * HALF_RANGE else "black")
    fig.colorbar(im, ax=ax, label=f"attack {metric} (0.5 = chance)")
    save(fig, output)
    return fig


@register_figure('figure4', file='figure4_transfer.png',
                 title='Figure 4. Attack transfer between models',
                 caption=CAPTION, tables=('transfer',), scores=None,
                 params=())
def draw(data: FigureData, output):
    return figure_transfer(data.tables["transfer"], output)
