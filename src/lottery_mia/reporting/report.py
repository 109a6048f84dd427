"""The report's views: what the HTML report shows of each table, as escaped HTML tables.

Everything taken from the config or the data is HTML-escaped (pandas escapes table cells;
the Jinja2 template, ``templates/report.html.j2``, escapes every other value). The job that
renders the report is :mod:`lottery_mia.jobs.report`. Pure pandas: no torch.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pandas as pd

from .summaries import method_means
from ..vocabulary import MEAN, fmt_ci

CSS = """
body { font-family: system-ui, sans-serif; max-width: 1240px; margin: 2em auto;
       padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; max-width: 100%; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.5em; text-align: right;
         white-space: normal; vertical-align: top; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; font-size: 0.85em;
      white-space: pre-wrap; }
figure { margin: 1.5em 0; } figcaption { color: #555; font-size: 0.9em; }
.note { color: #555; font-size: 0.9em; }
details { margin: 0.5em 0 1em; } summary { cursor: pointer; color: #444; }
summary h2 { display: inline; }
#summary { background: #f6f8fb; border: 1px solid #d7dde6; padding: 0.2em 1.2em 0.8em;
           margin-bottom: 1.2em; }
#summary table.data td { text-align: left; }
nav#contents { margin: 0 0 1.5em; font-size: 0.95em; }
figure img { width: 100%; height: auto; }
"""


def data_uri(path) -> str:
    """A PNG as a data URI (the report is one self-contained file)."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def html_table(frame: pd.DataFrame, floatfmt: str = "{:.4f}") -> str:
    """An HTML table whose headers can wrap (snake_case names are written with spaces), so
    that wide tables fit the page."""
    shown = frame.rename(columns=lambda c: str(c).replace("_", " "))
    return shown.to_html(index=False, float_format=lambda v: floatfmt.format(v), border=0,
                         escape=True)


def with_ci(frame: pd.DataFrame, metrics, suffix: str = "", digits: int = 3) -> pd.DataFrame:
    """Replace metric columns by 'value [low, high]' strings."""
    out = frame.copy()
    for m in metrics:
        col = f"{m}{suffix}"
        if col not in out:
            continue
        out[col] = [fmt_ci(v, lo, hi, digits) for v, lo, hi in
                    zip(out[col], out[f"{m}_ci_low{suffix}"], out[f"{m}_ci_high{suffix}"])]
        out = out.drop(columns=[f"{m}_ci_low{suffix}", f"{m}_ci_high{suffix}"])
    return out


def table1_view(t1: pd.DataFrame) -> pd.DataFrame:
    view = pd.DataFrame({"dataset": t1["dataset"], "sample size": t1["sample_size"]})
    names = {"test_acc": "test accuracy", "accuracy": "attack accuracy",
             "precision": "attack precision"}
    for m in (["test_acc"] if "test_acc_dense" in t1 else []) + ["accuracy", "precision"]:
        for side in ("dense", "ticket"):
            vals = [fmt_ci(v, lo, hi) for v, lo, hi in
                    zip(t1[f"{m}_{side}"], t1[f"{m}_ci_low_{side}"], t1[f"{m}_ci_high_{side}"])]
            if m == "accuracy":
                vals = [v + (" (chance)" if verdict == "at chance" else "")
                        for v, verdict in zip(vals, t1[f"verdict_{side}"])]
            view[f"{names[m]}: {side}"] = vals
    return view


NOT_MEASURABLE = "n/a (fewer than 10 non-members above the threshold)"


def low_fpr_cell(v, lo, hi) -> str:
    """A TPR at a fixed FPR with its interval, or why it is not reported."""
    return NOT_MEASURABLE if pd.isna(v) else fmt_ci(v, lo, hi)


def evaluated_on(frame: pd.DataFrame) -> list[str]:
    """'250 + 750 (K=4)': the members and non-members an attack was evaluated on (and the
    reference models of a reference attack)."""
    out = []
    for _, r in frame.iterrows():
        text = (f"{int(r['n_eval_members'])} + {int(r['n_eval_nonmembers'])}"
                if pd.notna(r.get("n_eval_members")) else "n/a")
        if pd.notna(r.get("n_references")):
            text += f" (K={int(r['n_references'])})"
        out.append(text)
    return out


def attack_models_view(models: pd.DataFrame) -> pd.DataFrame:
    """Two rows per attack (the dense network, then the ticket), so the table fits a page."""
    rows = []
    for _, r in models.iterrows():
        for side in ("dense", "ticket"):
            if all(pd.isna(r.get(f"{m}_{side}")) for m in ("auc", "n_eval_members")):
                continue  # not run on this side (a pair attack has no dense row)
            row = {"dataset": r["dataset"], "n": r["sample_size"], "attack": r["attack"],
                   "kind": r["kind"], "model": side}
            n1, n0 = r.get(f"n_eval_members_{side}"), r.get(f"n_eval_nonmembers_{side}")
            row["members + non-members"] = (
                f"{int(n1)} + {int(n0)}" if pd.notna(n1) and pd.notna(n0) else "n/a") + (
                f" (K={int(r['n_references_' + side])})"
                if pd.notna(r.get(f"n_references_{side}")) else "")
            for m, label in (("balanced_accuracy", "balanced accuracy"), ("auc", "AUC"),
                             ("tpr_at_fpr_0.1", "TPR at 10% FPR"),
                             ("tpr_at_fpr_0.01", "TPR at 1% FPR"),
                             ("tpr_at_fpr_0.001", "TPR at 0.1% FPR")):
                if f"{m}_{side}" not in models:
                    continue
                cell = low_fpr_cell if m.startswith("tpr") else fmt_ci
                row[label] = cell(r[f"{m}_{side}"], r[f"{m}_ci_low_{side}"],
                                  r[f"{m}_ci_high_{side}"])
            mf = r.get(f"min_fpr_{side}")
            row["min FPR"] = "n/a" if pd.isna(mf) else f"{mf:.2g}"
            sec, k = r.get(f"attack_seconds_{side}"), r.get(f"n_references_{side}")
            row["cost (s)"] = ("n/a" if pd.isna(sec) else f"{sec:.2f}") + (
                f" + {int(k)} reference networks" if pd.notna(k) else "")
            fit = r.get(f"fit_{side}")
            row["fitted"] = fit if isinstance(fit, str) else ""
            across = r.get("fit_across_sizes")
            row["estimator across sample sizes"] = across if isinstance(across, str) else ""
            rows.append(row)
    view = pd.DataFrame(rows)
    for col in ("fitted", "estimator across sample sizes"):
        if col in view and not (view[col] != "").any():
            view = view.drop(columns=col)
    return drop_unmeasurable(view)


def drop_unmeasurable(view: pd.DataFrame) -> pd.DataFrame:
    """Without the TPR columns that are n/a on every row; ``view.attrs["unmeasurable"]``
    names them, for a note under the table (a column of the same n/a text helps nobody and
    pushes the table off the page)."""
    gone = [c for c in view.columns if c.startswith("TPR at ")
            and (view[c] == NOT_MEASURABLE).all()]
    out = view.drop(columns=gone)
    out.attrs["unmeasurable"] = gone
    return out


def unmeasurable_note(view: pd.DataFrame) -> str:
    """'TPR at 1% FPR and TPR at 0.1% FPR: n/a (fewer than 10 non-members above the
    threshold) for every attack here.' or ''."""
    gone = view.attrs.get("unmeasurable", [])
    return (f"{' and '.join(gone)}: {NOT_MEASURABLE} for every attack here." if gone else "")


def verdicts_view(verdicts: pd.DataFrame) -> pd.DataFrame:
    """One row per comparison: the values, the difference with its interval (over seeds
    and rows) and at equal generalisation gap, the verdict and the seeds it would need."""
    def seeds(k, verdict):
        if verdict != "inconclusive":
            return ""
        if np.isnan(k):
            return "n/a"
        return "more rows" if np.isinf(k) else f"~{int(k)}"

    return pd.DataFrame({
        "dataset": verdicts["dataset"], "arch": verdicts["arch"],
        "pruned": [f"{m} s={s:g}" for m, s in zip(verdicts["method"],
                                                   verdicts["ticket_sparsity"])],
        "n": verdicts["sample_size"], "attack": verdicts["attack"],
        "metric": verdicts["metric"],
        "dense": [f"{v:.3f}" for v in verdicts["dense"]],
        "pruned value": [f"{v:.3f}" for v in verdicts["ticket"]],
        "pruned - dense [95% CI]": [fmt_ci(v, lo, hi) for v, lo, hi in
                                    zip(verdicts["diff"], verdicts["diff_ci_low"],
                                        verdicts["diff_ci_high"])],
        "at equal gap": [fmt_ci(v, lo, hi) for v, lo, hi in
                         zip(verdicts["diff_at_gap"], verdicts["diff_at_gap_ci_low"],
                             verdicts["diff_at_gap_ci_high"])],
        "over": [f"{n} seeds + rows" if s != "these networks" else
                 f"rows of {n} network(s)"
                 for n, s in zip(verdicts["n_seeds"], verdicts["scope"])],
        "margin": [f"±{m:g}" for m in verdicts["margin"]],
        "Holm p": [f"{p:.2g}" if np.isfinite(p) else "n/a" for p in verdicts["p_holm"]],
        "verdict": verdicts["verdict"],
        "power": [f"{p:.0%}" if np.isfinite(p) else "n/a"
                  for p in verdicts.get("power", pd.Series(np.nan, index=verdicts.index))],
        "seeds to decide": [seeds(k, v) for k, v in zip(verdicts["seeds_needed"],
                                                        verdicts["verdict"])],
    })


def models_mean_view(training: pd.DataFrame) -> pd.DataFrame:
    means = method_means(training)
    view = means[["dataset", "arch", "method", "sparsity", "achieved_sparsity",
                  "replicates"]].copy()
    for m in ("test_acc", "train_acc", "generalization_gap"):
        view[m] = [fmt_ci(v, lo, hi, 4) for v, lo, hi in
                   zip(means[m], means[f"{m}_seed_ci_low"], means[f"{m}_seed_ci_high"])]
    return view


def models_each_view(training: pd.DataFrame) -> pd.DataFrame:
    return with_ci(training[[c for c in training.columns if c in (
        "dataset", "arch", "method", "method_kind", "sparsity", "achieved_sparsity",
        "imp_round", "replicate", "test_acc", "test_acc_ci_low",
        "test_acc_ci_high", "train_acc", "train_acc_ci_low", "train_acc_ci_high",
        "measured_sparsity_prunable", "sparsity_all_parameters", "epochs", "rewind_epoch",
        "train_seconds", "device")]], ("test_acc", "train_acc"), digits=4)


def attacks_view(attacks: pd.DataFrame) -> pd.DataFrame:
    """Every attack's mean over seeds. Balanced accuracy, not plain accuracy: the reference
    attacks are evaluated on every row their references judge, which hold more non-members
    than members (plain accuracy there rewards saying "non-member"); on the balanced
    attack-test rows of the other attacks the two are the same number."""
    mean_rows = attacks[attacks["replicate"] == MEAN]
    view = with_ci(mean_rows[["dataset", "arch", "method", "sparsity", "sample_size",
                              "attack"] + [
        c for c in mean_rows.columns if c.split("_ci_")[0] in (
            "balanced_accuracy", "auc", "advantage") and "seed" not in c]],
        ("balanced_accuracy", "auc", "advantage"))
    view = view.rename(columns={"balanced_accuracy": "balanced accuracy"})
    view["tpr_at_fpr_0.1"] = [low_fpr_cell(v, lo, hi) for v, lo, hi in zip(
        mean_rows["tpr_at_fpr_0.1"], mean_rows["tpr_at_fpr_0.1_ci_low"],
        mean_rows["tpr_at_fpr_0.1_ci_high"])]
    view["members + non-members"] = evaluated_on(mean_rows)
    view["min FPR"] = [f"{v:.2g}" for v in mean_rows["min_fpr"]]
    view["verdict"] = mean_rows["verdict_auc"].to_numpy()
    return view


def slices_view(slices: pd.DataFrame) -> pd.DataFrame:
    return with_ci(slices[["dataset", "arch", "method", "sparsity", "sample_size", "attack",
                           "slice", "value", "n_members", "n_nonmembers", "accuracy",
                           "accuracy_ci_low", "accuracy_ci_high", "auc", "auc_ci_low",
                           "auc_ci_high"]], ("accuracy", "auc"))


def transfer_view(transfer: pd.DataFrame) -> pd.DataFrame:
    return with_ci(transfer[["source_arch", "source_method", "source_sparsity",
                             "target_arch", "target_method", "target_sparsity",
                             "accuracy", "accuracy_ci_low", "accuracy_ci_high", "auc",
                             "auc_ci_low", "auc_ci_high"]], ("accuracy", "auc"))


def method_accuracy_view(training: pd.DataFrame, kinds: dict) -> pd.DataFrame:
    """Test accuracy and achieved sparsity of each (method, requested sparsity)."""
    means = method_means(training)
    if means.empty:
        return means
    return pd.DataFrame({
        "dataset": means["dataset"], "arch": means["arch"], "method": means["method"],
        "kind": [kinds.get(m, k) for m, k in zip(means["method"], means["method_kind"])],
        "requested sparsity": [f"{v:g}" for v in means["sparsity"]],
        "achieved sparsity": [f"{v:.4f}" for v in means["achieved_sparsity"]],
        "replicates": means["replicates"],
        "test accuracy [seed CI]": [
            fmt_ci(v, lo, hi, 4) for v, lo, hi in
            zip(means["test_acc"], means["test_acc_seed_ci_low"],
                means["test_acc_seed_ci_high"])],
    })


def _value_with_chance(value: float, verdict) -> str:
    text = "n/a" if pd.isna(value) else f"{value:.3f}"
    return text + (" (chance)" if verdict == "at chance" else "")


def method_verdicts_view(mv: pd.DataFrame, attacks: pd.DataFrame) -> pd.DataFrame:
    """The ticket-vs-control verdicts, one row per comparison."""
    mean_rows = attacks[attacks["replicate"] == MEAN]

    def verdict_of(r, method) -> str | None:
        col = f"verdict_{r['metric']}"
        if col not in mean_rows:
            return None
        hit = mean_rows[(mean_rows["dataset"] == r["dataset"]) & (mean_rows["arch"] == r["arch"])
                        & (mean_rows["method"] == method)
                        & ((mean_rows["sparsity"] - r["sparsity"]).abs() < 1e-9)
                        & (mean_rows["sample_size"] == r["sample_size"])
                        & (mean_rows["attack"] == r["attack"])]
        return None if hit.empty else hit[col].iat[0]

    rows = [r for _, r in mv.iterrows()]
    return pd.DataFrame({
        "dataset": mv["dataset"], "n": mv["sample_size"], "arch": mv["arch"],
        "sparsity": [f"{v:g}" for v in mv["sparsity"]], "attack": mv["attack"],
        "metric": mv["metric"], "method": mv["method"], "versus": mv["versus"],
        "method value": [_value_with_chance(r["method_value"], verdict_of(r, r["method"]))
                         for r in rows],
        "versus value": [_value_with_chance(r["versus_value"], verdict_of(r, r["versus"]))
                         for r in rows],
        "difference [95% CI]": [
            fmt_ci(v, lo, hi) for v, lo, hi in
            zip(mv["diff"], mv["diff_ci_low"], mv["diff_ci_high"])],
        "Holm p": [f"{p:.2g}" if np.isfinite(p) else "n/a" for p in mv["p_holm"]],
        "verdict": mv["verdict"],
        "achieved sparsity": [
            f"{a:.3f} vs {b:.3f}" for a, b in
            zip(mv["achieved_sparsity_method"], mv["achieved_sparsity_versus"])],
        "test accuracy": [
            ("n/a" if pd.isna(a) else f"{a:.3f}") + " vs "
            + ("n/a" if pd.isna(b) else f"{b:.3f}")
            for a, b in zip(mv["test_acc_method"], mv["test_acc_versus"])],
    })


def benchmark_view(table: pd.DataFrame) -> pd.DataFrame:
    """Snakemake's benchmark records per rule (wall seconds, peak memory)."""
    from ..benchmarks import benchmark_overview

    return benchmark_overview(table)


def plain(obj):
    """Snakemake hands params as its own mapping/list types; turn them into plain ones."""
    if isinstance(obj, dict) or hasattr(obj, "items"):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


def render_template(name: str, context: dict) -> str:
    """A page from ``templates/<name>`` (every value autoescaped; tables passed in are HTML
    that pandas escaped): the pipeline's report and the audit's."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("lottery_mia", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      keep_trailing_newline=True)
    return env.get_template(name).render(**context)


def pair_verdicts_view(pv: pd.DataFrame) -> pd.DataFrame:
    """The pair verdicts (pair_verdicts.csv), one row per comparison."""
    return pd.DataFrame({
        "dataset": pv["dataset"], "n": pv["sample_size"], "arch": pv["arch"],
        "ticket": [f"{m} s={float(s):g}" for m, s in zip(pv["method"], pv["ticket_sparsity"])],
        "pair attack": pv["attack"], "metric": pv["metric"],
        "pair": [f"{v:.3f}" for v in pv["pair"]],
        "single network": [f"{v:.3f} ({a}, {s})" for v, a, s in
                           zip(pv["single"], pv["versus_attack"], pv["stronger"])],
        "difference [95% CI]": [fmt_ci(v, lo, hi) for v, lo, hi in
                                zip(pv["diff"], pv["diff_ci_low"], pv["diff_ci_high"])],
        "Holm p": [f"{p:.2g}" if np.isfinite(p) else "n/a" for p in pv["p_holm"]],
        "verdict": pv["verdict"], "family": pv["family"],
    })


def defence_verdicts_view(dv: pd.DataFrame) -> pd.DataFrame:
    """The defence verdicts (defence_verdicts.csv), one row per defended ticket."""
    from ..defences import short_label

    def pt(v):
        return f"{v:+.3f}" if np.isfinite(v) else "n/a"

    return pd.DataFrame({
        "dataset": dv["dataset"], "defence": [short_label(d) for d in dv["defence"]],
        "n": dv["sample_size"],
        "arch": dv["arch"],
        "ticket": [f"{m} s={float(s):g}" for m, s in zip(dv["method"], dv["ticket_sparsity"])],
        "attack": dv["attack"], "metric": dv["metric"],
        "dense / ticket, defended": [f"{d:.3f} / {t:.3f}" for d, t in
                                     zip(dv["dense"], dv["ticket"])],
        "ticket - dense [95% CI]": [fmt_ci(v, lo, hi) for v, lo, hi in
                                    zip(dv["diff"], dv["diff_ci_low"], dv["diff_ci_high"])],
        "protection": dv["protection"],
        "lowered by (dense / ticket)": [f"{pt(d)} / {pt(t)}" for d, t in
                                        zip(dv["protection_dense"], dv["protection_ticket"])],
        "without the defence": dv["verdict_undefended"],
        **({"epsilon (dense / ticket)": [f"{d:.2f} / {t:.2f}" if np.isfinite(t) else "n/a"
                                         for d, t in zip(dv["epsilon_dense"],
                                                         dv["epsilon_ticket"])]}
           if pd.to_numeric(dv["epsilon_ticket"], errors="coerce").notna().any() else {}),
    })
