"""The audit's report: the log-log ROC figure, the attacks table, the headline and the page."""

from __future__ import annotations

import json
import time
from pathlib import Path


import pandas as pd

from ..io import atomic_write_bytes
from .inputs import KIND_ORDER


# --------------------------------------------------------------------------- figure
KIND_TITLES = {"classifier": "classifier attacks\n(fit on attack-train, on attack-test)",
               "threshold": "threshold attacks\n(cut on attack-train, on attack-test)",
               "reference": "reference-model attacks\n(rows the references can judge)"}
LINESTYLES = ("-", "--", "-.", ":")


def draw_roc(frame: pd.DataFrame, scores: pd.DataFrame, output, model: str):
    """Log-log ROC curves of every attack on the rows it is evaluated on, a panel per kind
    (classifier, threshold, reference), the legend under each panel; the shaded band is
    where fewer than 10 non-members lie above the threshold (TPR not reported there).
    Names are drawn literally (a ``$`` in a model's name is no mathtext)."""
    import matplotlib

    with matplotlib.rc_context({"text.parse_math": False}):
        return _draw_roc(frame, scores, output, model)


def _draw_roc(frame: pd.DataFrame, scores: pd.DataFrame, output, model: str):
    from ..figures.style import panels, roc_panel, save
    from ..stats.metrics import MIN_ABOVE
    from ..vocabulary import evaluated

    kinds = [k for k in KIND_ORDER if (frame["kind"] == k).any()]
    fig, axes = panels(len(kinds), width=4.4, height=5.4)
    fold = scores["fold"].to_numpy()
    member = scores["member"].to_numpy().astype(bool)
    for ax, kind in zip(axes, kinds):
        rows = frame[frame["kind"] == kind]
        keep = evaluated(fold, kind,  # the reference attacks share their judged rows
                         scores[f"score_{rows['attack'].iat[0]}"].to_numpy())
        n0 = int((~member[keep]).sum())
        lim = 1.0 / max(n0, 1)
        ax.axvspan(lim / 2, min(MIN_ABOVE * lim, 1.0), color="grey", alpha=0.12, lw=0,
                   label=f"TPR not reported (< {MIN_ABOVE} non-members above)")
        roc_panel(ax, [(member[keep], scores[f"score_{r.attack}"].to_numpy()[keep],
                        dict(linestyle=LINESTYLES[i % len(LINESTYLES)], color=f"C{i % 10}",
                             linewidth=1.4, label=f"{r.attack} (AUC {r.auc:.3f})"))
                       for i, r in enumerate(rows.itertuples(index=False))],
                  n0, KIND_TITLES[kind], xlabel=f"false positive rate ({n0} non-members)")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1,
                  frameon=False)
    fig.suptitle(f"{model}: ROC curves of every attack (log-log)", fontsize=10)
    save(fig, output)
    return fig


# --------------------------------------------------------------------------- report
NBSP = "\u00a0"


def attacks_view(frame: pd.DataFrame) -> pd.DataFrame:
    """The report's attacks table: best AUC first, every number with its interval."""
    from ..reporting.report import low_fpr_cell
    from ..vocabulary import fmt_ci

    f = frame.sort_values("auc", ascending=False, kind="stable")

    def cells(metric, cell):  # a number and its interval never wrap; "n/a (...)" may
        return [cell(v, lo, hi) if pd.isna(v) else cell(v, lo, hi).replace(" ", NBSP)
                for v, lo, hi in zip(f[metric], f[f"{metric}_ci_low"],
                                     f[f"{metric}_ci_high"])]

    return pd.DataFrame({
        "attack": f["attack"], "kind": f["kind"],
        "AUC [95% CI]": cells("auc", fmt_ci),
        # chance 0.5 on any mix of members and non-members (plain accuracy is not)
        "balanced accuracy [95% CI]": cells("balanced_accuracy", fmt_ci),
        "TPR at 10% FPR": cells("tpr_at_fpr_0.1", low_fpr_cell),
        "TPR at 1% FPR": cells("tpr_at_fpr_0.01", low_fpr_cell),
        "TPR at 0.1% FPR": cells("tpr_at_fpr_0.001", low_fpr_cell),
        "evaluated rows (members + non-members)": [
            f"{int(a)}{NBSP}+{NBSP}{int(b)}" for a, b in zip(f["n_eval_members"],
                                                  f["n_eval_nonmembers"])],
        "min FPR": [f"{v:.2g}" for v in f["min_fpr"]],
        "K": ["" if pd.isna(v) else str(int(v)) for v in f["n_references"]],
        "AUC vs chance": f["verdict_auc"],
    })


def headline(frame: pd.DataFrame) -> list[str]:
    """Sentences for the top of the report: the strongest attack by AUC, and by TPR at the
    lowest FPR measurable on these rows."""
    from ..vocabulary import fmt_ci

    best = frame.sort_values("auc", ascending=False, kind="stable").iloc[0]
    out = [f"Strongest attack by AUC: {best['attack']} ({best['kind']}), AUC "
           f"{fmt_ci(best['auc'], best['auc_ci_low'], best['auc_ci_high'])} "
           f"({best['verdict_auc']})."]
    for x in (0.001, 0.01, 0.1):  # the lowest FPR at which a TPR is measurable
        col = f"tpr_at_fpr_{x:g}"
        low = frame[frame[col].notna()]
        if len(low):
            b = low.sort_values(col, ascending=False, kind="stable").iloc[0]
            value = fmt_ci(b[col], b[f"{col}_ci_low"], b[f"{col}_ci_high"])
            rate = f"{x:.1%}".replace(".0%", "%")
            lower = "; lower FPRs are not measurable on these rows" if x > 0.001 else ""
            out.append(f"Highest TPR at {rate} FPR: {b['attack']}, {value} (chance: "
                       f"{x:g}){lower}.")
            break
    else:
        out.append("No TPR at 10% FPR or below is measurable on these rows (fewer than 100 "
                   "evaluated non-members).")
    return out


def write_report(frame, inputs, run, files, model) -> None:
    """``report.html`` from ``templates/audit.html.j2`` (every value autoescaped; the table
    is HTML that pandas escaped; the figure inlined as base64)."""
    from .. import __version__
    from ..reporting.report import CSS, data_uri, html_table, render_template
    from ..vocabulary import fmt_ci

    t = inputs["target"]

    def acc(a):
        return fmt_ci(a["value"], a["ci_low"], a["ci_high"])

    context = {
        "css": CSS, "model": model, "version": __version__,
        "generated": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "headline": headline(frame), "attacks_table": html_table(attacks_view(frame)),
        "roc": data_uri(files["roc"]), "inputs": inputs, "run": run,
        "train_accuracy": acc(t["train_accuracy"]),
        "heldout_accuracy": acc(t["heldout_accuracy"]),
        "settings_text": json.dumps(run["settings"], indent=1, sort_keys=True)
        if run["settings"] else "",
        "files": {k: Path(v).name for k, v in files.items()},
    }
    html = render_template("audit.html.j2", context)
    atomic_write_bytes(html.encode(), files["report"])
