"""The paper's figures, drawn from the summary tables.

- Figure 1: test accuracy vs sparsity, a line per architecture (a panel per dataset);
- Figure 2: attack accuracy vs sparsity at one sample size, a line per architecture;
- Figure 3: attack accuracy vs attack sample size at one sparsity, a line per architecture;
- Figure 4: transfer heat-map, source model (rows) x target model (columns);
- Figure 5 (extension): ROC curves of the attacks on log-log axes, dense vs tickets.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DPI = 130


def _panels(n: int, width: float = 4.6, height: float = 3.6):
    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
    return fig, axes[0]


def _save(fig, path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _by_arch_lines(ax, frame: pd.DataFrame, x: str, y: str, *, xlabel: str, ylabel: str,
                   title: str, chance: float | None = None, percent_x: bool = False) -> None:
    for arch, part in frame.groupby("arch"):
        part = part.sort_values(x)
        xs = part[x] * (100 if percent_x else 1)
        ax.plot(xs, part[y], marker="o", label=arch)
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle=":", linewidth=1, label="chance")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()


def _per_dataset(frame: pd.DataFrame, output, x: str, y: str, **line_kw) -> None:
    """One panel per dataset, a line per architecture; ``title`` may use ``{ds}``."""
    datasets = sorted(frame["dataset"].unique())
    fig, axes = _panels(len(datasets))
    title = line_kw.pop("title")
    for ax, ds in zip(axes, datasets):
        _by_arch_lines(ax, frame[frame["dataset"] == ds], x, y, title=title.format(ds=ds),
                       **line_kw)
    _save(fig, output)


SPARSITY_LABEL = "sparsity (% of prunable weights removed)"


def figure_test_accuracy(training: pd.DataFrame, output) -> None:
    _per_dataset(training, output, "sparsity", "test_acc", xlabel=SPARSITY_LABEL,
                 ylabel="test accuracy (non-members)", percent_x=True,
                 title="Fig. 1: lottery tickets on {ds}")


def figure_attack_vs_sparsity(attacks: pd.DataFrame, sample_size: int, output) -> None:
    sel = attacks[attacks["sample_size"] == sample_size]
    if sel.empty:
        raise ValueError(f"no attack results at sample size {sample_size} "
                         "(config key report.figure2_sample_size)")
    _per_dataset(sel, output, "sparsity", "accuracy", xlabel=SPARSITY_LABEL,
                 ylabel="attack accuracy (MLP)", chance=0.5, percent_x=True,
                 title=f"Fig. 2: MIA vs sparsity, {{ds}}, n={sample_size}")


def figure_attack_vs_sample_size(attacks: pd.DataFrame, sparsity: float, output) -> None:
    sel = attacks[np.isclose(attacks["sparsity"], sparsity)]
    if sel.empty:
        raise ValueError(f"no attack results at sparsity {sparsity} "
                         "(config key report.figure3_sparsity)")
    _per_dataset(sel, output, "sample_size", "accuracy",
                 xlabel="attack sample size n (members + non-members)",
                 ylabel="attack accuracy (MLP)", chance=0.5,
                 title=f"Fig. 3: MIA vs sample size, {{ds}}, sparsity {sparsity:g}")


def model_label(arch: str, sparsity: float) -> str:
    return f"{arch} s={sparsity:g}"


def figure_transfer(transfer: pd.DataFrame, output, metric: str = "accuracy") -> None:
    src = [model_label(a, s) for a, s in zip(transfer["source_arch"], transfer["source_sparsity"])]
    tgt = [model_label(a, s) for a, s in zip(transfer["target_arch"], transfer["target_sparsity"])]
    frame = transfer.assign(source=src, target=tgt)
    order = [model_label(a, s) for a, s in
             sorted(set(zip(frame["source_arch"], frame["source_sparsity"]))
                    | set(zip(frame["target_arch"], frame["target_sparsity"])))]
    grid = frame.pivot(index="source", columns="target", values=metric).reindex(
        index=order, columns=order)
    n = len(order)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * n + 2, 1.0 + 0.6 * n + 1.5))
    im = ax.imshow(grid.to_numpy(dtype=float), cmap="viridis", vmin=min(0.5, np.nanmin(grid)),
                   vmax=max(np.nanmax(grid), 0.5 + 1e-6))
    ax.set_xticks(range(n), order, rotation=45, ha="right")
    ax.set_yticks(range(n), order)
    ax.set_xlabel("target (model attacked)")
    ax.set_ylabel("source (attack trained on)")
    ds = ", ".join(sorted(transfer["dataset"].unique())) if "dataset" in transfer else ""
    ax.set_title(f"Fig. 4: attack transfer ({metric}) {ds}")
    for i in range(n):
        for j in range(n):
            v = grid.iat[i, j]
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if v < (np.nanmin(grid) + np.nanmax(grid)) / 2 else "black")
    fig.colorbar(im, ax=ax, label=f"attack {metric}")
    _save(fig, output)


def figure_roc(curves: list[dict], output) -> None:
    """``curves``: dicts with dataset, arch, sparsity, sample_size, member, score (attack_test)."""
    from .metrics import roc_points

    datasets = sorted({c["dataset"] for c in curves})
    fig, axes = _panels(len(datasets), width=4.8, height=4.4)
    for ax, ds in zip(axes, datasets):
        for c in sorted((c for c in curves if c["dataset"] == ds),
                        key=lambda c: (c["arch"], c["sparsity"])):
            fpr, tpr = roc_points(c["member"], c["score"])
            ax.plot(np.maximum(fpr, 1e-5), np.maximum(tpr, 1e-5),
                    label=model_label(c["arch"], c["sparsity"]))
        lim = 1.0 / max(min(int((~np.asarray(c["member"], bool)).sum()) for c in curves), 1)
        ax.plot([lim, 1], [lim, 1], color="grey", linestyle=":", label="chance")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lim, 1)
        ax.set_ylim(lim, 1)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title(f"Fig. 5: attack ROC (log-log), {ds}, n={curves[0]['sample_size']}")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    _save(fig, output)


# --------------------------------------------------------------------------- workflow entries
def figure_test_accuracy_from_csv(training_csv, output) -> None:
    figure_test_accuracy(pd.read_csv(training_csv), output)


def figure_attack_vs_sparsity_from_csv(attacks_csv, sample_size: int, output) -> None:
    figure_attack_vs_sparsity(pd.read_csv(attacks_csv), sample_size, output)


def figure_attack_vs_sample_size_from_csv(attacks_csv, sparsity: float, output) -> None:
    figure_attack_vs_sample_size(pd.read_csv(attacks_csv), sparsity, output)


def figure_transfer_from_csv(transfer_csv, output) -> None:
    figure_transfer(pd.read_csv(transfer_csv), output)


def figure_roc_from_scores(score_paths: list, models: list[dict], output) -> None:
    """ROC curves from the attack_test scores of each model (``models`` in path order)."""
    curves = []
    for path, m in zip(score_paths, models, strict=True):
        s = pd.read_parquet(path)
        s = s[s["fold"] == "attack_test"]
        curves.append({**m, "member": s["member"].to_numpy(), "score": s["score"].to_numpy()})
    figure_roc(curves, output)
