"""The paper's figures, drawn from the summary tables.

Every number drawn carries its 95% interval (error bars), as in the tables.

- Figure 1: test accuracy vs achieved sparsity, a panel per (dataset, arch) and a line per
  ticket-finding method or control, each starting at the shared dense point (mean over
  replicate seeds, each seed as a dot);
- Figure 2: attack accuracy and AUC vs achieved sparsity at one sample size, a line per
  (architecture, method);
- Figure 3: attack accuracy vs attack sample size, the dense network and one method's
  ticket at one sparsity, a line per (architecture, method);
- Figure 4: transfer heat-map, source model (rows) x target model (columns);
- Figure 5 (extension): ROC curves of the attacks on log-log axes, dense vs tickets;
- Figure 6 (the paper's future work): attack accuracy/AUC per true class and for correctly
  vs incorrectly classified samples, Table 1's models;
- Figure 7 (the paper's future work): generalisation gap vs attack AUC over all models, with
  the Spearman rank correlation;
- Figure 8: log-log ROC curves of every attack (reference attacks included) for Table 1's
  models;
- Figure 9: TPR at 1% FPR vs sparsity, one line per attack (the dense network and one
  method's tickets).

Models are keyed by (dataset, arch, method, sparsity) (see :mod:`lottery_mia.tables`); the
figure functions return the matplotlib Figure they saved (closed, still inspectable).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .summaries import read_attacks_csv, read_scores, read_training_csv  # noqa: E402
from .tables import (  # noqa: E402
    DEFAULT_METHOD, DENSE, achieved_column, method_means, method_of, model_name, with_method,
)

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


def _panels(n: int, width: float = 4.6, height: float = 3.6):
    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
    return fig, axes[0]


def _save(fig, path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _errbar(ax, xs, ys, lo, hi, **kw):
    ys, lo, hi = (np.asarray(v, dtype=float) for v in (ys, lo, hi))
    yerr = np.vstack([np.where(np.isfinite(lo), ys - lo, 0.0),
                      np.where(np.isfinite(hi), hi - ys, 0.0)])
    kw.setdefault("marker", "o")
    return ax.errorbar(xs, ys, yerr=np.maximum(yerr, 0.0), capsize=3, **kw)


def _finish(ax, xlabel, ylabel, title, chance=None):
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle=":", linewidth=1, label="chance")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)




SPARSITY_LABEL = "sparsity (% of prunable weights removed)"
ACHIEVED_LABEL = "achieved sparsity (% of prunable weights removed)"
INTERVAL_NOTE = "bars: 95% CI"


def _seed_interval(part: pd.DataFrame, reps: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
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


def figure_test_accuracy(training: pd.DataFrame, output):
    """Mean test accuracy over replicates vs the mean achieved sparsity, a panel per
    (dataset, arch) and a line per method, each line starting at the shared dense point
    (bars: Student-t interval across seeds, or the Wilson interval of a single model), each
    replicate as a cross. Returns the Figure."""
    tr = with_method(training)
    tr["achieved_sparsity"] = achieved_column(tr)
    means = method_means(tr)
    order = method_order(tr["method"])
    panels = sorted(set(zip(tr["dataset"], tr["arch"])))
    fig, axes = _panels(len(panels))
    for ax, (ds, arch) in zip(axes, panels):
        m = means[(means["dataset"] == ds) & (means["arch"] == arch)]
        reps = tr[(tr["dataset"] == ds) & (tr["arch"] == arch)]
        dense = m[m["method"] == DENSE]
        methods = [x for x in order if x != DENSE and x in set(m["method"])]
        for method in methods or ([DENSE] if not dense.empty else []):
            own = m[m["method"] == method]
            part = own if method == DENSE else pd.concat([dense, own])
            part = part.sort_values("achieved_sparsity")
            lo, hi = _seed_interval(part, reps)
            _errbar(ax, part["achieved_sparsity"] * 100, part["test_acc"], lo, hi,
                    label=f"{method} (mean of {int(own['replicates'].min())})",
                    **method_style(method, order))
        if methods and not dense.empty:  # the shared start, drawn once on top
            lo, hi = _seed_interval(dense, reps)
            _errbar(ax, dense["achieved_sparsity"] * 100, dense["test_acc"], lo, hi,
                    linestyle="none", zorder=3,
                    label=f"dense (mean of {int(dense['replicates'].min())})",
                    **method_style(DENSE, order))
        for method in [DENSE] + methods:
            r = reps[reps["method"] == method]
            if not r.empty:
                ax.scatter(r["achieved_sparsity"] * 100, r["test_acc"], s=12, alpha=0.5,
                           marker="x", color=method_style(method, order)["color"])
        _finish(ax, ACHIEVED_LABEL, "test accuracy (non-members)",
                f"Fig. 1: {arch} on {ds}\n({INTERVAL_NOTE}; x: each seed)")
    _save(fig, output)
    return fig


def _attack_lines(ax, frame: pd.DataFrame, x: str, y: str, percent_x: bool = False,
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
            _errbar(ax, xs, part[y], part[f"{y}_ci_low"], part[f"{y}_ci_high"],
                    linestyle=LINESTYLES[a_i % len(LINESTYLES)], label=label,
                    **method_style(method, order))
        if from_dense and DENSE not in methods and not dense.empty:  # the shared start
            xs = dense[x] * (100 if percent_x else 1)
            _errbar(ax, xs, dense[y], dense[f"{y}_ci_low"], dense[f"{y}_ci_high"],
                    linestyle="none", zorder=3,
                    label=DENSE if len(archs) == 1 else f"{arch} {DENSE}",
                    **method_style(DENSE, order))


def _mean_rows(attacks: pd.DataFrame, attack: str) -> pd.DataFrame:
    sel = attacks[(attacks["replicate"].astype(str) == "mean") & (attacks["attack"] == attack)]
    if sel.empty:
        raise ValueError(f"no results of the {attack!r} attack (config key attack.models)")
    sel = with_method(sel)
    return sel.assign(achieved_sparsity=achieved_column(sel))


def figure_attack_vs_sparsity(attacks: pd.DataFrame, sample_size: int, output,
                              attack: str = "mlp"):
    """Attack accuracy and AUC vs the achieved sparsity, a line per (arch, method) starting
    at the dense network. Returns the Figure."""
    sel = _mean_rows(attacks, attack)
    sel = sel[sel["sample_size"] == sample_size]
    if sel.empty:
        raise ValueError(f"no attack results at sample size {sample_size} "
                         "(config key report.figure2_sample_size)")
    order = method_order(sel["method"])
    datasets = sorted(sel["dataset"].unique())
    fig, axes = plt.subplots(2, len(datasets), figsize=(4.8 * len(datasets), 6.8),
                             squeeze=False)
    for j, ds in enumerate(datasets):
        part = sel[sel["dataset"] == ds]
        for i, metric in enumerate(("accuracy", "auc")):
            _attack_lines(axes[i, j], part, "achieved_sparsity", metric, percent_x=True,
                          order=order, from_dense=True)
            _finish(axes[i, j], ACHIEVED_LABEL, f"attack {metric} ({attack})",
                    f"Fig. 2: MIA vs sparsity, {ds}, n={sample_size} ({INTERVAL_NOTE})",
                    chance=0.5)
    _save(fig, output)
    return fig


def figure_attack_vs_sample_size(attacks: pd.DataFrame, sparsity: float, output,
                                 attack: str = "mlp", method: str = DEFAULT_METHOD):
    """Attack accuracy vs sample size: the dense network and its ``method`` ticket at
    ``sparsity``, a line per (arch, method). Returns the Figure."""
    sel = _mean_rows(attacks, attack)
    if np.isclose(sparsity, 0.0):  # the dense network alone
        method = DENSE
    ticket = (sel["method"] == method) & np.isclose(sel["sparsity"], sparsity)
    if not ticket.any():
        raise ValueError(f"no {attack} attack results for the {method} ticket at sparsity "
                         f"{sparsity} (config keys report.figure3_sparsity, "
                         "report.table1_method)")
    sel = sel[ticket | (sel["method"] == DENSE)]
    datasets = sorted(sel["dataset"].unique())
    fig, axes = _panels(len(datasets))
    for ax, ds in zip(axes, datasets):
        _attack_lines(ax, sel[sel["dataset"] == ds], "sample_size", "accuracy",
                      order=[DENSE, method])
        _finish(ax, "attack sample size n (members + non-members)",
                f"attack accuracy ({attack})",
                f"Fig. 3: MIA vs sample size, {ds}: "
                + ("dense" if method == DENSE else
                   f"dense vs {method} ticket at sparsity {sparsity:g}")
                + f" ({INTERVAL_NOTE})", chance=0.5)
    _save(fig, output)
    return fig


def model_label(arch: str, sparsity: float, method: str | None = None) -> str:
    """'resnet18 imp s=0.8', 'resnet18 dense'; without a method, 'resnet18 s=0.8'."""
    if method is None:
        return f"{arch} s={sparsity:g}"
    return model_name(arch, method, sparsity)


def figure_transfer(transfer: pd.DataFrame, output, metric: str = "accuracy"):
    transfer = with_method(with_method(transfer, "source_method", "source_sparsity"),
                           "target_method", "target_sparsity")
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
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * n + 2, 1.0 + 0.6 * n + 1.5))
    im = ax.imshow(grid.to_numpy(dtype=float), cmap="viridis", vmin=min(0.5, np.nanmin(grid)),
                   vmax=max(np.nanmax(grid), 0.5 + 1e-6))
    ax.set_xticks(range(n), order, rotation=45, ha="right")
    ax.set_yticks(range(n), order)
    ax.set_xlabel("target (model attacked)")
    ax.set_ylabel("source (attack trained on)")
    ds = ", ".join(sorted(transfer["dataset"].unique())) if "dataset" in transfer else ""
    ax.set_title(f"Fig. 4: attack transfer ({metric}) {ds}\n'~': 95% CI covers chance (0.5)",
                 fontsize=10)
    for i in range(n):
        for j in range(n):
            v = grid.iat[i, j]
            if np.isfinite(v):
                mark = "~" if (i, j) in at_chance else ""
                ax.text(j, i, f"{mark}{v:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if v < (np.nanmin(grid) + np.nanmax(grid)) / 2 else "black")
    fig.colorbar(im, ax=ax, label=f"attack {metric}")
    _save(fig, output)
    return fig


def figure_roc(curves: list[dict], output, attack: str = "mlp"):
    """``curves``: dicts with dataset, arch, method, sparsity, sample_size, member, score
    (attack_test). Returns the Figure."""
    from .metrics import roc_points

    datasets = sorted({c["dataset"] for c in curves})
    fig, axes = _panels(len(datasets), width=4.8, height=4.4)
    for ax, ds in zip(axes, datasets):
        for c in sorted((c for c in curves if c["dataset"] == ds),
                        key=lambda c: (c["arch"], method_of(c) != DENSE, c["sparsity"],
                                       method_of(c))):
            fpr, tpr = roc_points(c["member"], c["score"])
            ax.plot(np.maximum(fpr, 1e-5), np.maximum(tpr, 1e-5),
                    label=model_name(c["arch"], method_of(c), c["sparsity"]))
        lim = 1.0 / max(min(int((~np.asarray(c["member"], bool)).sum()) for c in curves), 1)
        ax.plot([lim, 1], [lim, 1], color="grey", linestyle=":", label="chance")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lim, 1)
        ax.set_ylim(lim, 1)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title(f"Fig. 5: {attack} attack ROC (log-log), {ds}, "
                     f"n={curves[0]['sample_size']}", fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    _save(fig, output)
    return fig


def figure_slices(slices: pd.DataFrame, output):
    """Per-class and correct/incorrect attack accuracy and AUC of Table 1's models."""
    slices = with_method(slices)
    attacks = list(dict.fromkeys(slices["attack"]))
    fig, axes = plt.subplots(len(attacks), 2, figsize=(12, 3.4 * len(attacks)), squeeze=False)
    models = list(dict.fromkeys(zip(slices["arch"], slices["method"], slices["sparsity"])))
    width = 0.8 / max(len(models), 1)
    for i, attack in enumerate(attacks):
        part = slices[slices["attack"] == attack]
        cats = list(dict.fromkeys(
            (f"class {v}" if k == "class" else v) for k, v in zip(part["slice"], part["value"])))
        for j, metric in enumerate(("accuracy", "auc")):
            ax = axes[i, j]
            for k, (arch, method, sp) in enumerate(models):
                m = part[(part["arch"] == arch) & (part["method"] == method)
                         & np.isclose(part["sparsity"], sp)]
                labels = [(f"class {v}" if kk == "class" else v)
                          for kk, v in zip(m["slice"], m["value"])]
                xs = np.array([cats.index(lbl) for lbl in labels]) + (k - (len(models) - 1) / 2) * width
                ys = m[metric].to_numpy(dtype=float)
                lo = m[f"{metric}_ci_low"].to_numpy(dtype=float)
                hi = m[f"{metric}_ci_high"].to_numpy(dtype=float)
                yerr = np.vstack([np.nan_to_num(ys - lo), np.nan_to_num(hi - ys)])
                ax.bar(xs, np.nan_to_num(ys - 0.5), bottom=0.5, width=width, yerr=yerr,
                       capsize=2, label=model_name(arch, method, sp), color=f"C{k % 10}",
                       alpha=0.8)
            ax.axhline(0.5, color="grey", linestyle=":", linewidth=1)
            ax.set_xticks(range(len(cats)), cats, rotation=45, ha="right", fontsize=8)
            ax.set_ylabel(f"attack {metric}")
            n = int(part["sample_size"].iat[0])
            ax.set_title(f"Fig. 6: {attack} attack {metric} by slice, n={n} ({INTERVAL_NOTE})",
                         fontsize=10)
            ax.grid(alpha=0.3, axis="y")
            ax.legend(fontsize=8)
    _save(fig, output)
    return fig


def figure_gap(training: pd.DataFrame, attacks: pd.DataFrame, sample_size: int, output,
               attack: str = "mlp") -> dict:
    """Generalisation gap (train - test accuracy) vs attack AUC, one dot per model and seed;
    returns the Spearman rank correlation (rho, p-value, number of models)."""
    from scipy.stats import spearmanr

    sel = attacks[(attacks["attack"] == attack) & (attacks["replicate"].astype(str) != "mean")
                  & (attacks["sample_size"] == sample_size)].copy()
    sel["replicate"] = sel["replicate"].astype(int)
    keys = ["dataset", "arch", "method", "sparsity", "replicate"]
    sel = with_method(sel)
    tr = with_method(training)
    tr["sparsity"] = tr["sparsity"].round(6)
    sel["sparsity"] = sel["sparsity"].round(6)
    merged = sel.merge(tr[keys + ["generalization_gap"]], on=keys)
    if len(merged) < 2:
        raise ValueError(f"the gap figure needs at least two models with {attack} results at "
                         f"n={sample_size} (config key report.figure2_sample_size)")
    rho, pval = spearmanr(merged["generalization_gap"], merged["auc"])
    lo, hi = spearman_ci(float(rho), len(merged))
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    order = method_order(merged["method"])
    archs = sorted(merged["arch"].unique())
    for (arch, method), part in merged.groupby(["arch", "method"]):
        style = method_style(method, order)
        if len(archs) > 1:
            style["marker"] = MARKERS[archs.index(arch) % len(MARKERS)]
        _errbar(ax, part["generalization_gap"], part["auc"], part["auc_ci_low"],
                part["auc_ci_high"], linestyle="none",
                label=method if len(archs) == 1 else f"{arch} {method}", **style)
    _finish(ax, "generalisation gap (train accuracy - test accuracy)",
            f"attack AUC ({attack})",
            f"Fig. 7: gap vs attack, n={sample_size}: Spearman rho = {rho:.2f} "
            f"[{lo:.2f}, {hi:.2f}] (p = {pval:.2g}, {len(merged)} models)", chance=0.5)
    ax.legend(fontsize=7, ncol=2)
    _save(fig, output)
    return {"spearman_rho": float(rho), "spearman_rho_ci_low": lo, "spearman_rho_ci_high": hi,
            "p_value": float(pval), "models": int(len(merged))}


def spearman_ci(rho: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Interval of a Spearman correlation: Fisher's z with Bonett & Wright's (2000)
    standard error sqrt((1 + rho^2 / 2) / (n - 3)); nan with fewer than 4 points."""
    from scipy.stats import norm

    if n < 4 or not np.isfinite(rho):
        return float("nan"), float("nan")
    z = np.arctanh(np.clip(rho, -0.999999, 0.999999))
    half = norm.ppf(0.5 + level / 2) * np.sqrt((1 + rho * rho / 2) / (n - 3))
    return float(np.tanh(z - half)), float(np.tanh(z + half))


def figure_roc_all_attacks(curves: list[dict], output):
    """Log-log ROC of every attack, one panel per model (``curves``: dicts with label,
    attack, member, score)."""
    models = list(dict.fromkeys(c["label"] for c in curves))
    fig, axes = _panels(len(models), width=5.0, height=4.6)
    for ax, model in zip(axes, models):
        mine = [c for c in curves if c["label"] == model]
        n0 = min(int((~np.asarray(c["member"], bool)).sum()) for c in mine)
        lim = 1.0 / max(n0, 1)
        for i, c in enumerate(sorted(mine, key=lambda c: c["attack"])):
            fpr, tpr = roc_points_of(c)
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
    _save(fig, output)
    return fig


def roc_points_of(curve: dict):
    from .metrics import roc_points

    return roc_points(curve["member"], curve["score"])


def figure_low_fpr_vs_sparsity(attacks: pd.DataFrame, arch: str, sample_size: int,
                               output, metric: str = "tpr_at_fpr_0.01",
                               which: list[str] | None = None,
                               method: str = DEFAULT_METHOD):
    """TPR at 1% FPR (with 95% intervals) vs achieved sparsity, one line per attack of
    ``which`` (default: every attack), on the dense network and its ``method`` tickets.
    Returns the Figure."""
    sel = attacks[(attacks["replicate"].astype(str) == "mean") & (attacks["arch"] == arch)
                  & (attacks["sample_size"] == sample_size)]
    sel = with_method(sel)
    sel = sel[sel["method"].isin([DENSE, method])]
    sel = sel.assign(achieved_sparsity=achieved_column(sel))
    if which:
        sel = sel[sel["attack"].isin(which)]
    if sel.empty:
        raise ValueError(f"no attack results for {arch} ({method}) at n={sample_size} "
                         "(config keys report.table1_arch, report.figure2_sample_size, "
                         "report.table1_method)")
    datasets = sorted(sel["dataset"].unique())
    fig, axes = _panels(len(datasets), width=6.0, height=4.4)
    for ax, ds in zip(axes, datasets):
        part = sel[sel["dataset"] == ds]
        attacks_here = sorted(part["attack"].unique())
        offset = np.linspace(-0.8, 0.8, len(attacks_here))
        for i, (attack, a) in enumerate(part.groupby("attack")):
            a = a.sort_values("achieved_sparsity")
            _errbar(ax, a["achieved_sparsity"] * 100 + offset[attacks_here.index(attack)],
                    a[metric],
                    a[f"{metric}_ci_low"], a[f"{metric}_ci_high"], color=f"C{i % 10}",
                    label=attack, markersize=4)
        n0 = int(part["n_nonmembers"].iloc[0])
        ax.axhline(0.01, color="grey", linestyle=":", linewidth=1, label="chance (1%)")
        ax.set_yscale("symlog", linthresh=0.01)
        _finish(ax, ACHIEVED_LABEL, "TPR at 1% FPR",
                f"Fig. 9: low-FPR attack power, {ds}, n={sample_size}\n"
                f"{arch} dense and {method} tickets\n"
                f"({n0} non-members in attack-test; {INTERVAL_NOTE})")
        ax.legend(fontsize=7, ncol=2)
    _save(fig, output)
    return fig


# --------------------------------------------------------------------------- workflow entries
def figure_test_accuracy_from_csv(training_csv, output):
    return figure_test_accuracy(read_training_csv(training_csv), output)


def _attacks(attacks_csv) -> pd.DataFrame:
    return read_attacks_csv(attacks_csv)


def figure_attack_vs_sparsity_from_csv(attacks_csv, sample_size: int, output,
                                       attack: str = "mlp") -> None:
    figure_attack_vs_sparsity(_attacks(attacks_csv), sample_size, output, attack)


def figure_attack_vs_sample_size_from_csv(attacks_csv, sparsity: float, output,
                                          attack: str = "mlp", method: str = DEFAULT_METHOD):
    return figure_attack_vs_sample_size(_attacks(attacks_csv), sparsity, output, attack,
                                        method)


def figure_transfer_from_csv(transfer_csv, output) -> None:
    figure_transfer(pd.read_csv(transfer_csv), output)


def figure_slices_from_csv(slices_csv, output) -> None:
    figure_slices(pd.read_csv(slices_csv), output)


def figure_gap_from_csv(training_csv, attacks_csv, sample_size: int, output_figure,
                        output_json, attack: str = "mlp") -> dict:
    from .io import write_json

    res = figure_gap(read_training_csv(training_csv), _attacks(attacks_csv), sample_size,
                     output_figure, attack)
    write_json({**res, "attack": attack, "sample_size": sample_size}, output_json)
    return res


def figure_roc_all_attacks_from_scores(score_paths: list, models: list[dict], attacks_csv,
                                       output) -> None:
    """``models``: dicts with dataset, arch, method, sparsity, sample_size (in path
    order)."""
    attacks = _attacks(attacks_csv)
    kinds = dict(zip(attacks["attack"], attacks["kind"]))
    curves = []
    for path, m in zip(score_paths, models, strict=True):
        s = read_scores(path)
        s = s[s["fold"] == "attack_test"]
        label = (f"{m['dataset']} {model_name(m['arch'], method_of(m), m['sparsity'])} "
                 f"n={m['sample_size']}")
        for col in [c for c in s.columns if c.startswith("score_")]:
            name = col[len("score_"):]
            curves.append({"label": label, "attack": name, "kind": kinds.get(name),
                           "member": s["member"].to_numpy(), "score": s[col].to_numpy()})
    figure_roc_all_attacks(curves, output)


def figure_low_fpr_vs_sparsity_from_csv(attacks_csv, arch: str, sample_size: int,
                                        output, which: list[str] | None = None,
                                        method: str = DEFAULT_METHOD):
    return figure_low_fpr_vs_sparsity(_attacks(attacks_csv), arch, sample_size, output,
                                      which=which, method=method)


def figure_roc_from_scores(score_paths: list, models: list[dict], output,
                           attack: str = "mlp") -> None:
    """ROC curves from the attack_test scores of each model (``models``: dicts with
    dataset, arch, method, sparsity, sample_size, in path order)."""
    curves = []
    for path, m in zip(score_paths, models, strict=True):
        s = read_scores(path)
        s = s[s["fold"] == "attack_test"]
        curves.append({**m, "method": method_of(m), "member": s["member"].to_numpy(),
                       "score": s[f"score_{attack}"].to_numpy()})
    return figure_roc(curves, output, attack)
