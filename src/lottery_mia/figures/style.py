"""What every figure shares: colors and markers per method, panels, error bars, saving.

Every number drawn carries its 95% interval (error bars), as in the tables; models are keyed
by (dataset, arch, method, sparsity) (:mod:`lottery_mia.vocabulary`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..vocabulary import DENSE


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (imported when a figure is drawn,
    not when the registry is read while the DAG is built)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt

DPI = 190  # a 6.4-inch figure is 1216 px: the report page's width (figures fill it)


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


LINESTYLES = ("-", "--", "-.", ":")


def attack_axes(axes, min_span: float = 0.3, chance: float = 0.5) -> tuple[float, float]:
    """One y range for every panel of an attack figure: it holds chance and every interval
    drawn (the panels' data limits, error bars included), and spans at least ``min_span``,
    so noise around chance is not stretched into a trend. Returns (low, high)."""
    axes = list(np.ravel(axes))
    lo = min([chance] + [ax.dataLim.y0 for ax in axes if np.isfinite(ax.dataLim.y0)])
    hi = max([chance] + [ax.dataLim.y1 for ax in axes if np.isfinite(ax.dataLim.y1)])
    if hi - lo < min_span:
        grow = (min_span - (hi - lo)) / 2
        lo, hi = lo - grow, hi + grow
        if lo < 0:
            lo, hi = 0.0, min_span
        if hi > 1:
            lo, hi = 1.0 - min_span, 1.0
    pad = 0.02 * (hi - lo)
    lo, hi = max(0.0, lo - pad), min(1.0, hi + pad)
    for ax in axes:
        ax.set_ylim(lo, hi)
    return lo, hi


def method_order(methods) -> list[str]:
    """Dense first, then the methods in order of appearance."""
    ms = list(dict.fromkeys(str(m) for m in methods))
    return ([DENSE] if DENSE in ms else []) + [m for m in ms if m != DENSE]


# One style per method in every figure: the dense network black circles, the methods the
# project ships in this order; a plug-in method not listed gets a style of its own from its
# name (the same in every figure and run).
METHOD_STYLE_ORDER = ("oneshot", "imp", "snip", "grasp", "random_mask", "random_reinit")


def method_style(method: str, order: list[str] | None = None) -> dict:
    """The color and marker of ``method``: the same in every figure (``order`` is accepted
    for the callers that pass it, and not used: a method's style never depends on which
    others a figure shows)."""
    if method == DENSE:
        return {"color": "black", "marker": "o"}
    if method in METHOD_STYLE_ORDER:
        i = METHOD_STYLE_ORDER.index(method)
    else:
        import zlib

        i = len(METHOD_STYLE_ORDER) + zlib.crc32(method.encode()) % 4
    return {"color": f"C{i % 10}", "marker": MARKERS[1 + i % (len(MARKERS) - 1)]}


def panels(n: int, width: float = 4.6, height: float = 3.6):
    fig, axes = pyplot().subplots(1, n, figsize=(width * n, height), squeeze=False)
    return fig, axes[0]


def save(fig, path) -> None:
    """Write ``fig`` as a PNG (through a temporary name) and close it; legends placed
    outside the axes are kept (``bbox_inches="tight"``)."""
    from ..io import atomic_path

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png", bbox_inches="tight")
    pyplot().close(fig)


def legend_outside(ax, ncol: int = 1, fontsize: int = 8):
    """The legend of ``ax`` to the right of its data, never over it."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                  borderaxespad=0.0, fontsize=fontsize, ncol=ncol, frameon=False)


def clip_unit(values) -> np.ndarray:
    """Interval ends clipped to [0, 1], the range of every rate drawn (a t interval of a
    few seeds can run past it)."""
    return np.clip(np.asarray(values, dtype=float), 0.0, 1.0)


def errbar(ax, xs, ys, lo, hi, **kw):
    ys, lo, hi = (np.asarray(v, dtype=float) for v in (ys, lo, hi))
    yerr = np.vstack([np.where(np.isfinite(lo), ys - lo, 0.0),
                      np.where(np.isfinite(hi), hi - ys, 0.0)])
    kw.setdefault("marker", "o")
    return ax.errorbar(xs, ys, yerr=np.maximum(yerr, 0.0), capsize=3, **kw)


def finish(ax, xlabel, ylabel, title, chance=None, legend: bool = True):
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle=":", linewidth=1, label="chance")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if legend:
        legend_outside(ax)


SPARSITY_LABEL = "sparsity (% of prunable weights removed)"


ACHIEVED_LABEL = "achieved sparsity (% of prunable weights removed)"


INTERVAL_NOTE = "bars: 95% CI"


def seed_interval(part: pd.DataFrame, reps: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per model row of ``part`` (method means): the Student-t interval across seeds, or the
    Wilson interval of a single model's test accuracy."""
    lo, hi = [], []
    for r in part.itertuples(index=False):
        if r.replicates >= 2:
            lo.append(r.test_acc_seed_ci_low)
            hi.append(r.test_acc_seed_ci_high)
            continue
        one = reps[(reps["method"] == r.method) & np.isclose(reps["sparsity"], r.sparsity)]
        if one.empty or "test_acc_ci_low" not in one:
            lo.append(np.nan)
            hi.append(np.nan)
        else:
            lo.append(float(one["test_acc_ci_low"].iat[0]))
            hi.append(float(one["test_acc_ci_high"].iat[0]))
    return np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)


def attack_lines(ax, frame: pd.DataFrame, x: str, y: str, percent_x: bool = False,
                  order: list[str] | None = None, from_dense: bool = False):
    """A line per (arch, method) of ``frame`` (attack mean rows with a method column);
    ``from_dense``: every method's line starts at its arch's dense row. Color and marker by
    method, linestyle by arch."""
    order = order or method_order(frame["method"])
    archs = sorted(frame["arch"].unique())
    for a_i, arch in enumerate(archs):
        part_a = frame[frame["arch"] == arch]
        dense = part_a[part_a["method"] == DENSE]
        methods = [m for m in order if m in set(part_a["method"])]
        if from_dense:
            methods = [m for m in methods if m != DENSE] or ([DENSE] if not dense.empty else [])
        for method in methods:
            own = part_a[part_a["method"] == method]
            part = pd.concat([dense, own]) if from_dense and method != DENSE else own
            part = part.sort_values(x)
            xs = part[x] * (100 if percent_x else 1)
            label = method if len(archs) == 1 else f"{arch} {method}"
            errbar(ax, xs, part[y], part[f"{y}_ci_low"], part[f"{y}_ci_high"],
                    linestyle=LINESTYLES[a_i % len(LINESTYLES)], label=label,
                    **method_style(method, order))
        if from_dense and DENSE not in methods and not dense.empty:  # the shared start
            xs = dense[x] * (100 if percent_x else 1)
            errbar(ax, xs, dense[y], dense[f"{y}_ci_low"], dense[f"{y}_ci_high"],
                    linestyle="none", zorder=3,
                    label=DENSE if len(archs) == 1 else f"{arch} {DENSE}",
                    **method_style(DENSE, order))


def mean_rows(attacks: pd.DataFrame, attack: str) -> pd.DataFrame:
    """The rows of ``attack`` averaged over seeds."""
    sel = attacks[(attacks["replicate"].astype(str) == "mean") & (attacks["attack"] == attack)]
    if sel.empty:
        raise ValueError(f"no results of the {attack!r} attack (config key attack.models)")
    return sel


def roc_panel(ax, lines, n_nonmembers: int, title: str, xlabel: str = "false positive rate",
              fontsize: int = 9) -> float:
    """Log-log ROC curves on ``ax`` (the one drawing of them: Figures 5 and 8, the audit):
    ``lines`` are (member flags, scores, plot keywords with the label); the smallest FPR
    measurable is 1 / ``n_nonmembers``, curves are floored at half of it, with the chance
    diagonal. Returns that smallest FPR."""
    from ..stats.metrics import roc_points

    lim = 1.0 / max(int(n_nonmembers), 1)
    for member, score, kw in lines:
        fpr, tpr = roc_points(member, score)
        ax.plot(np.maximum(fpr, lim / 2), np.maximum(tpr, lim / 2), **kw)
    ax.plot([lim / 2, 1], [lim / 2, 1], color="grey", linestyle=":", linewidth=1,
            label="chance")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lim / 2, 1)
    ax.set_ylim(lim / 2, 1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("true positive rate")
    ax.set_title(title, fontsize=fontsize)
    ax.grid(alpha=0.3, which="both")
    return lim
