"""The self-contained HTML report: Table 1 with intervals and verdicts, the attack-model
comparison, figures, per-slice results and every summary table. Everything taken from the
config or the data is HTML-escaped. Pure pandas: no torch.

Summary tables live in :mod:`lottery_mia.summaries`, the report's tables in
:mod:`lottery_mia.tables`.
"""

from __future__ import annotations

import base64
import html
import time
from pathlib import Path

import pandas as pd

from .io import atomic_write_bytes, log, read_json
from .summaries import read_attacks_csv, read_training_csv
from .tables import DEFAULT_METHOD, fmt_ci, method_means, with_method

# --------------------------------------------------------------------------- HTML report
CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; font-size: 0.85em; }
.note { color: #555; font-size: 0.9em; }
"""


def _img(path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{html.escape(Path(path).name)}" src="data:image/png;base64,{data}">'


def _table(frame: pd.DataFrame, floatfmt: str = "{:.4f}") -> str:
    return frame.to_html(index=False, float_format=lambda v: floatfmt.format(v), border=0,
                         escape=True)


def _with_ci(frame: pd.DataFrame, metrics, suffix: str = "", digits: int = 3) -> pd.DataFrame:
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


CAPTIONS = {
    "figure1": "Figure 1. Test accuracy of the tickets and their controls by achieved "
               "sparsity, a line per method, every line starting at the dense network "
               "(sparsity 0): mean over the replicate seeds with a 95% interval across "
               "seeds (Wilson interval for a single seed); each seed as a cross. An "
               "iterative-pruning (IMP) point sits at the sparsity its round really reached.",
    "figure2": "Figure 2. Accuracy and AUC of the membership-inference attack by achieved "
               "sparsity, a line per method (and architecture), mean over seeds, 95% "
               "bootstrap intervals over the attack-test rows.",
    "figure3": "Figure 3. Attack accuracy by the number of samples used (n/2 members, n/2 "
               "non-members; half for training the attack, half for testing it): the dense "
               "network and Table 1's ticket method.",
    "figure4": "Figure 4. Attack transfer: an attack trained on the source model's "
               "confidences, evaluated on the target model's (first replicate). The diagonal "
               "is the base case; '~' marks cells whose 95% interval covers chance.",
    "figure5": "Figure 5 (extension). ROC curves of the attack on log-log axes (first "
               "replicate); the low false-positive region is where membership inference "
               "matters. The smallest measurable FPR is 1 / the number of non-members.",
    "figure6": "Figure 6 (the paper's future work). Attack accuracy and AUC per true class, "
               "and on samples the model classifies correctly vs incorrectly, for Table 1's "
               "dense network and ticket (mean over seeds, 95% bootstrap intervals). Classes "
               "are balanced by construction; the correct/incorrect slices are not (most "
               "misclassified samples are non-members), so read their AUC.",
    "figure7": "Figure 7 (the paper's future work). Generalisation gap (train - test accuracy) "
               "of every model and seed against the attack's AUC (95% interval), colored by "
               "method, with the Spearman rank correlation.",
    "figure8": "Figure 8. ROC curves of every attack on Table 1's dense network and ticket "
               "(first replicate), log-log: solid lines are reference-model attacks (LiRA, "
               "RMIA, shadow models), dashed classifier attacks, dotted threshold attacks.",
    "figure9": "Figure 9. True-positive rate at 1% false-positive rate vs achieved sparsity "
               "(the dense network and Table 1's ticket method), for the report's attack, the loss attack and the reference-model attacks (mean over seeds, 95% bootstrap intervals; the dotted line is "
               "chance). Modern audits judge attacks here.",
}


def write_report(*, table1_csv, verdicts_csv, attack_models_csv, slices_csv, gap_json,
                 training_csv, attacks_csv, transfer_csv, figures: dict, config: dict,
                 table1_arch: str, table1_sparsity: float, attack: str, output,
                 benchmarks_csv=None, table1_method: str = DEFAULT_METHOD,
                 methods: list | None = None, method_verdicts_csv=None) -> None:
    """``methods``: dicts {name, kind, description} of the configured methods (dense
    included); ``method_verdicts_csv``: :func:`lottery_mia.tables.method_verdicts`'s table."""
    import yaml

    config_text = yaml.safe_dump(_plain(config), sort_keys=False)
    t1 = pd.read_csv(table1_csv)
    verdicts = pd.read_csv(verdicts_csv)
    models = pd.read_csv(attack_models_csv)
    slices = pd.read_csv(slices_csv)
    gap = read_json(gap_json)
    training = with_method(read_training_csv(training_csv))
    attacks = with_method(read_attacks_csv(attacks_csv))
    transfer = with_method(with_method(pd.read_csv(transfer_csv), "source_method",
                                       "source_sparsity"), "target_method", "target_sparsity")
    slices = with_method(slices)
    esc = html.escape
    reps = sorted(training["replicate"].unique().tolist())

    t1_view = pd.DataFrame({"dataset": t1["dataset"], "sample size": t1["sample_size"]})
    for m in ("accuracy", "precision"):
        for side, label in (("baseline", "baseline"), ("ticket", "lottery ticket")):
            vals = [fmt_ci(v, lo, hi) for v, lo, hi in
                    zip(t1[f"{m}_{side}"], t1[f"{m}_ci_low_{side}"], t1[f"{m}_ci_high_{side}"])]
            if m == "accuracy":
                vals = [v + (" (chance)" if verdict == "at chance" else "")
                        for v, verdict in zip(vals, t1[f"verdict_{side}"])]
            t1_view[f"{m}: {label}"] = vals

    verdict_items = "".join(f"<li>{esc(s)}</li>" for s in verdicts["sentence"]) or \
        "<li>No verdicts: Table 1 has no paired rows.</li>"

    models_view = models[["dataset", "sample_size", "attack", "kind"]].copy()
    for m in ("accuracy", "auc", "tpr_at_fpr_0.01", "tpr_at_fpr_0.001"):
        for side in ("dense", "ticket"):
            if f"{m}_{side}" in models:
                models_view[f"{m} {side}"] = [
                    fmt_ci(v, lo, hi) for v, lo, hi in
                    zip(models[f"{m}_{side}"], models[f"{m}_ci_low_{side}"],
                        models[f"{m}_ci_high_{side}"])]

    means = method_means(training)
    t_view = means[["dataset", "arch", "method", "sparsity", "achieved_sparsity",
                    "replicates"]].copy()
    for m in ("test_acc", "train_acc", "generalization_gap"):
        t_view[m] = [fmt_ci(v, lo, hi, 4) for v, lo, hi in
                     zip(means[m], means[f"{m}_seed_ci_low"], means[f"{m}_seed_ci_high"])]
    per_model = _with_ci(training[[c for c in training.columns if c in (
        "dataset", "arch", "method", "method_kind", "sparsity", "achieved_sparsity",
        "imp_round", "replicate", "test_acc", "test_acc_ci_low",
        "test_acc_ci_high", "train_acc", "train_acc_ci_low", "train_acc_ci_high",
        "measured_sparsity_prunable", "sparsity_all_parameters", "epochs", "rewind_epoch",
        "train_seconds", "device")]], ("test_acc", "train_acc"), digits=4)

    mean_rows = attacks[attacks["replicate"] == "mean"]
    a_view = _with_ci(mean_rows[["dataset", "arch", "method", "sparsity", "sample_size",
                                 "attack"] + [
        c for c in mean_rows.columns if c.split("_ci_")[0] in (
            "accuracy", "auc", "advantage", "tpr_at_fpr_0.01") and "seed" not in c]],
        ("accuracy", "auc", "advantage", "tpr_at_fpr_0.01"))
    a_view["verdict"] = mean_rows["verdict_auc"].to_numpy()

    s_view = _with_ci(slices[["dataset", "arch", "method", "sparsity", "sample_size", "attack",
                              "slice",
                              "value", "n_members", "n_nonmembers", "accuracy",
                              "accuracy_ci_low", "accuracy_ci_high", "auc", "auc_ci_low",
                              "auc_ci_high"]], ("accuracy", "auc"))
    tr_view = _with_ci(transfer[["source_arch", "source_method", "source_sparsity",
                                 "target_arch", "target_method", "target_sparsity",
                                 "accuracy", "accuracy_ci_low", "accuracy_ci_high", "auc",
                                 "auc_ci_low", "auc_ci_high"]],
                       ("accuracy", "auc"))

    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        "<title>lottery-mia report</title>", f"<style>{CSS}</style></head><body>",
        "<h1>Membership inference on lottery-ticket networks</h1>",
        f"<p class='note'>Generated {esc(time.strftime('%Y-%m-%d %H:%M:%S %Z'))} by "
        "lottery-mia. Members are the target's training samples; non-members are held-out "
        "samples never trained on. Attack samples are class-stratified (each class has as "
        "many members as non-members in each fold), so the label alone carries no membership "
        f"information. {len(reps)} replicate training seed(s): {esc(str(reps))}. Every "
        "interval is a 95% interval: attack metrics by a percentile bootstrap over the "
        "attack-test rows (1000+ resamples; for the mean over seeds, the same rows for every "
        "seed), accuracies of the networks by Wilson (one model) or Student-t across seeds. "
        "A result whose interval covers chance (0.5) is marked as at chance. All numbers "
        "below come from this run.</p>",
        f"<h2>Table 1</h2><p>{esc(attack)} attack, {esc(table1_arch)}, "
        f"{esc(str(table1_method))} lottery ticket at sparsity {table1_sparsity:g}; mean over "
        "seeds.</p>", _table(t1_view),
        "<h2>Verdicts: does the ticket leak more than its dense parent?</h2>",
        "<p class='note'>Ticket minus dense on the same attack-test rows, paired bootstrap "
        "95% interval.</p>", f"<ul>{verdict_items}</ul>",
        "<h2>Attack models</h2><p class='note'>The paper's Section 4 compares attack models "
        "(MLP, SVM, random forest); here every configured attack on Table 1's models at the "
        "largest sample size, best dense AUC first: AUC and the true-positive rate at 1% and "
        "0.1% false-positive rate, dense vs ticket. Reference-model attacks (LiRA, RMIA, "
        "shadow models) assume no known target member.</p>", _table(models_view),
    ]
    parts += _methods_section(training, attacks, methods, method_verdicts_csv)
    for key in ("figure1", "figure2", "figure3", "figure4", "figure5", "figure6", "figure7",
                "figure8", "figure9"):
        if key in figures:
            parts += [f"<h2>{esc(CAPTIONS[key].split('.')[0])}</h2>", _img(figures[key]),
                      f"<p class='note'>{esc(CAPTIONS[key])}</p>"]
        if key == "figure7":
            parts.append(f"<p>Spearman rank correlation between generalisation gap and "
                         f"{esc(str(gap.get('attack')))} attack AUC over {gap['models']} "
                         "models: rho = "
                         + fmt_ci(gap["spearman_rho"], gap["spearman_rho_ci_low"],
                                  gap["spearman_rho_ci_high"])
                         + f" "
                         f"(95% interval by Fisher's z; p = {gap['p_value']:.2g}).</p>")
    parts += [
        "<h2>Models (mean over seeds)</h2>", _table(t_view),
        "<h2>Models (each seed)</h2>", _table(per_model),
        "<h2>All attacks (mean over seeds)</h2>",
        "<p class='note'>Per-seed rows and every metric (precision, recall, TPR at 0.1% FPR, "
        "seed intervals, the test-fold maximum advantage) are in "
        "results/summary/attacks.csv.</p>", _table(a_view),
        "<h2>Slices</h2>", _table(s_view),
        "<h2>Transfer</h2>", _table(tr_view),
        *_benchmark_section(benchmarks_csv),
        "<h2>Configuration of this run</h2>", f"<pre>{esc(config_text)}</pre>",
        "</body></html>",
    ]
    atomic_write_bytes("\n".join(parts).encode(), output)
    log(f"wrote {output}")


def _value_with_chance(value: float, verdict) -> str:
    text = "n/a" if pd.isna(value) else f"{value:.3f}"
    return text + (" (chance)" if verdict == "at chance" else "")


def _methods_section(training: pd.DataFrame, attacks: pd.DataFrame, methods,
                     method_verdicts_csv) -> list[str]:
    """'Tickets and their controls': what each method is, the test accuracy and achieved
    sparsity of each (method, requested sparsity), and the ticket-vs-control verdicts."""
    esc = html.escape
    methods = [_plain(m) for m in (methods or [])]
    out = ["<h2>Tickets and their controls</h2>",
           "<p class='note'>A lottery ticket is a sparse subnetwork found by a ticket-finding "
           "method and retrained from its rewound weights; the controls are sparse networks of "
           "the same requested sparsity that are not tickets. Comparing the attack on a "
           "ticket with the attack on its controls separates what the ticket-finding does "
           "from what sparsity alone does.</p>"]
    if methods:
        items = "".join(
            f"<li><b>{esc(str(m.get('name', '')))}</b> ({esc(str(m.get('kind', '')))}): "
            f"{esc(str(m.get('description', '') or ''))}</li>" for m in methods)
        out.append(f"<ul>{items}</ul>")
    means = method_means(training)
    if not means.empty:
        kinds = {str(m.get("name")): str(m.get("kind")) for m in methods}
        view = pd.DataFrame({
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
        out += ["<p class='note'>Test accuracy of each method by requested sparsity: mean "
                "over seeds with a Student-t 95% interval across seeds; the achieved "
                "sparsity is the mean fraction of prunable weights pruned (an iterative "
                "pruning round can prune more than requested).</p>", _table(view)]
    if method_verdicts_csv is None or not Path(method_verdicts_csv).exists():
        return out
    try:
        mv = pd.read_csv(method_verdicts_csv)
    except pd.errors.EmptyDataError:
        mv = pd.DataFrame()
    if mv.empty:
        out.append("<p>No ticket-vs-control verdicts: no requested sparsity has both a "
                   "ticket and a control (or two ticket methods).</p>")
        return out
    mean_rows = attacks[attacks["replicate"] == "mean"]

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
    view = pd.DataFrame({
        "dataset": mv["dataset"], "n": mv["sample_size"], "arch": mv["arch"],
        "sparsity": [f"{v:g}" for v in mv["sparsity"]], "attack": mv["attack"],
        "metric": mv["metric"], "method": mv["method"], "versus": mv["versus"],
        "method value": [_value_with_chance(r["method_value"], verdict_of(r, r["method"]))
                         for r in rows],
        "versus value": [_value_with_chance(r["versus_value"], verdict_of(r, r["versus"]))
                         for r in rows],
        "difference [95% CI]": [
            fmt_ci(v, lo, hi) + (" *" if bool(x) else "") for v, lo, hi, x in
            zip(mv["difference"], mv["ci_low"], mv["ci_high"], mv["excludes_zero"])],
        "achieved sparsity": [
            f"{a:.3f} vs {b:.3f}" for a, b in
            zip(mv["achieved_sparsity_method"], mv["achieved_sparsity_versus"])],
        "test accuracy": [
            ("n/a" if pd.isna(a) else f"{a:.3f}") + " vs "
            + ("n/a" if pd.isna(b) else f"{b:.3f}")
            for a, b in zip(mv["test_acc_method"], mv["test_acc_versus"])],
    })
    out += ["<h3>Verdicts: tickets vs controls</h3>",
            "<p class='note'>Method minus versus (a ticket minus a control, or a later ticket "
            "method minus the first) on the same attack-test rows at the same requested "
            "sparsity, paired bootstrap 95% interval; '*': the interval excludes 0; "
            "'(chance)': the attack's own interval on that model covers 0.5.</p>",
            _table(view),
            "<ul>" + "".join(f"<li>{esc(str(s))}</li>" for s in mv["sentence"]) + "</ul>"]
    return out


def _benchmark_section(benchmarks_csv) -> list[str]:
    """Snakemake's per-job records summarised per rule (wall seconds, peak memory)."""
    if benchmarks_csv is None or not Path(benchmarks_csv).exists():
        return []
    from .benchmarks import benchmark_overview

    table = pd.read_csv(benchmarks_csv)
    return ["<h2>Where the time went</h2><p class='note'>Snakemake's benchmark records of "
            "the training, scoring and attack jobs (results/summary/benchmarks.csv): wall "
            "seconds per rule and the largest resident memory, in MB.</p>",
            _table(benchmark_overview(table), "{:.1f}")]


def _plain(obj):
    """Snakemake hands params as its own mapping/list types; turn them into plain ones."""
    if isinstance(obj, dict) or hasattr(obj, "items"):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj
