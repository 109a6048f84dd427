"""Summary tables, the paper's Table 1, and the self-contained HTML report."""

from __future__ import annotations

import base64
import html
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .io import log, read_json

TRAINING_COLUMNS = ["dataset", "arch", "sparsity", "test_acc", "train_acc", "generalization_gap",
                    "measured_sparsity_prunable", "sparsity_all_parameters", "epochs",
                    "rewind_epoch", "train_seconds", "device"]


# --------------------------------------------------------------------------- summaries
def summarize_training(metric_paths: list, output) -> pd.DataFrame:
    rows = []
    for p in metric_paths:
        m = read_json(p)
        mask = m.get("mask", {})
        rows.append({
            "dataset": m["dataset"], "arch": m["arch"], "sparsity": float(m["sparsity"]),
            "test_acc": m["test_acc"], "train_acc": m["train_acc"],
            "generalization_gap": m["generalization_gap"],
            "measured_sparsity_prunable": m.get("measured_sparsity_prunable", 0.0),
            "sparsity_all_parameters": mask.get("sparsity_all_parameters", 0.0),
            "epochs": m["recipe"]["epochs"], "rewind_epoch": m["rewind_epoch"],
            "train_seconds": m["train_seconds"], "device": m["device"],
        })
    frame = pd.DataFrame(rows, columns=TRAINING_COLUMNS).sort_values(
        ["dataset", "arch", "sparsity"])
    _write_csv(frame, output)
    return frame


def summarize_attacks(metric_paths: list, output) -> pd.DataFrame:
    rows = []
    for p in metric_paths:
        m = read_json(p)
        row = {k: v for k, v in m.items() if not isinstance(v, (dict, list))}
        for name, b in m.get("baselines", {}).items():
            for k in ("accuracy", "auc", "tpr_at_fpr_0.01"):
                row[f"baseline_{name}_{k}"] = b[k]
        rows.append(row)
    frame = pd.DataFrame(rows).sort_values(["dataset", "arch", "sparsity", "sample_size"])
    _write_csv(frame, output)
    return frame


def summarize_transfer(paths: list, dataset: str, output) -> pd.DataFrame:
    frame = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    frame.insert(0, "dataset", dataset)
    frame = frame.sort_values(["source_arch", "source_sparsity", "target_arch",
                               "target_sparsity"])
    _write_csv(frame, output)
    return frame


def _write_csv(frame: pd.DataFrame, output) -> None:
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(output, index=False)
    log(f"wrote {output} ({len(frame)} rows)")


# --------------------------------------------------------------------------- Table 1
def table1(attacks: pd.DataFrame, arch: str, ticket_sparsity: float) -> pd.DataFrame:
    """Rows: dataset and sample size; columns: MLP attack accuracy and precision of the
    baseline (dense, sparsity 0) and of the lottery ticket at ``ticket_sparsity``."""
    sel = attacks[attacks["arch"] == arch]
    base = sel[np.isclose(sel["sparsity"], 0.0)]
    tick = sel[np.isclose(sel["sparsity"], ticket_sparsity)]
    if base.empty or tick.empty:
        raise ValueError(f"Table 1 needs attack results for {arch} at sparsity 0 and at "
                         f"{ticket_sparsity} (config keys report.table1_arch, "
                         f"report.table1_sparsity)")
    keys = ["dataset", "sample_size"]
    merged = base[keys + ["accuracy", "precision"]].merge(
        tick[keys + ["accuracy", "precision"]], on=keys, suffixes=("_baseline", "_ticket"))
    return pd.DataFrame({
        "dataset": merged["dataset"], "sample_size": merged["sample_size"],
        "accuracy_baseline": merged["accuracy_baseline"],
        "accuracy_ticket": merged["accuracy_ticket"],
        "precision_baseline": merged["precision_baseline"],
        "precision_ticket": merged["precision_ticket"],
    }).sort_values(keys).reset_index(drop=True)


def table1_markdown(t: pd.DataFrame, arch: str, ticket_sparsity: float) -> str:
    lines = [
        f"Table 1. Accuracy and precision of the MLP membership-inference attack ({arch}; "
        f"lottery ticket at sparsity {ticket_sparsity:g}).",
        "",
        "| Dataset | Sample size | Accuracy: baseline | Accuracy: lottery ticket "
        "| Precision: baseline | Precision: lottery ticket |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in t.itertuples(index=False):
        lines.append(f"| {r.dataset} | {r.sample_size} | {r.accuracy_baseline:.3f} | "
                     f"{r.accuracy_ticket:.3f} | {r.precision_baseline:.3f} | "
                     f"{r.precision_ticket:.3f} |")
    return "\n".join(lines) + "\n"


def write_table1(*, attacks_csv, arch: str, ticket_sparsity: float, out_csv, out_md) -> pd.DataFrame:
    t = table1(pd.read_csv(attacks_csv), arch, ticket_sparsity)
    _write_csv(t, out_csv)
    Path(out_md).write_text(table1_markdown(t, arch, ticket_sparsity))
    return t


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
    return frame.to_html(index=False, float_format=lambda v: floatfmt.format(v), border=0)


def write_report(*, table1_csv, training_csv, attacks_csv, transfer_csv, figures: dict,
                 config: dict, table1_arch: str, table1_sparsity: float, output) -> None:
    import yaml

    config_text = yaml.safe_dump(_plain(config), sort_keys=False)
    t1 = pd.read_csv(table1_csv)
    training = pd.read_csv(training_csv)
    attacks = pd.read_csv(attacks_csv)
    transfer = pd.read_csv(transfer_csv)
    attack_cols = [c for c in ["dataset", "arch", "sparsity", "sample_size", "accuracy",
                               "precision", "recall", "auc", "advantage", "tpr_at_fpr_0.01",
                               "baseline_loss_accuracy", "baseline_loss_auc", "n_nonmembers",
                               "converged"] if c in attacks]
    captions = {
        "figure1": "Figure 1. Test accuracy of the lottery tickets by sparsity "
                   "(sparsity 0 is the dense network).",
        "figure2": "Figure 2. Accuracy of the MLP membership-inference attack by sparsity.",
        "figure3": "Figure 3. Attack accuracy by the number of samples used (n/2 members, "
                   "n/2 non-members; half for training the attack, half for testing it).",
        "figure4": "Figure 4. Attack transfer: an attack trained on the source model's "
                   "confidences, evaluated on the target model's. The diagonal is the "
                   "base case.",
        "figure5": "Figure 5 (extension). ROC curves of the attacks on log-log axes; the "
                   "low false-positive region is where membership inference matters.",
    }
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        "<title>lottery-mia report</title>", f"<style>{CSS}</style></head><body>",
        "<h1>Membership inference on lottery-ticket networks</h1>",
        f"<p class='note'>Generated {html.escape(time.strftime('%Y-%m-%d %H:%M:%S %Z'))} by "
        "lottery-mia. Members are the target's training samples; non-members are held-out "
        "samples never trained on. All numbers below come from this run.</p>",
        f"<h2>Table 1</h2><p>MLP attack, {html.escape(table1_arch)}, lottery ticket at "
        f"sparsity {table1_sparsity:g}.</p>", _table(t1, "{:.3f}"),
    ]
    for key in ("figure1", "figure2", "figure3", "figure4", "figure5"):
        if key in figures:
            parts += [f"<h2>{captions[key].split('.')[0]}</h2>", _img(figures[key]),
                      f"<p class='note'>{html.escape(captions[key])}</p>"]
    parts += [
        "<h2>Models</h2>", _table(training),
        "<h2>All attacks</h2>", _table(attacks[attack_cols]),
        "<h2>Transfer</h2>", _table(transfer[["source_arch", "source_sparsity", "target_arch",
                                              "target_sparsity", "accuracy", "auc"]]),
        "<h2>Configuration of this run</h2>", f"<pre>{html.escape(config_text)}</pre>",
        "</body></html>",
    ]
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text("\n".join(parts))
    log(f"wrote {output}")


def _plain(obj):
    """Snakemake hands params as its own mapping/list types; turn them into plain ones."""
    if isinstance(obj, dict) or hasattr(obj, "items"):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj
