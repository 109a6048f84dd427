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

DPI = 130


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


LINESTYLES = ("-", "--", "-.", ":")


def method_order(methods) -> list[str]:
    """Dense first, then the methods in order of appearance."""
    ms = list(dict.fromkeys(str(m) for m in methods))
    return ([DENSE] if DENSE in ms else []) + [m for m in ms if m != DENSE]


def method_style(method: str, order: list[str]) -> dict:
    """The same color and marker for a method in every figure of one call."""
    i = order.index(method) if method in order else len(order)
    if method == DENSE:
        return {"color": "black", "marker": "o"}
    return {"color": f"C{i % 10}", "marker": MARKERS[i % len(MARKERS)]}


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
