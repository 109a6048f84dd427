"""The report's tables: the paper's Table 1 with intervals, ticket-vs-dense verdicts, the
attack-model comparison and per-class / per-correctness slices. Pure pandas: no torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .metrics import chance_verdict, paired_difference, slice_metrics
from .summaries import write_csv

T1_METRICS = ("accuracy", "precision")


def fmt_ci(value: float, low: float, high: float, digits: int = 3) -> str:
    """'0.574 [0.565, 0.584]' (a nan interval prints as the value alone)."""
    if not np.isfinite(value):
        return "n/a"
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _sel(attacks: pd.DataFrame, **eq) -> pd.DataFrame:
    out = attacks
    for k, v in eq.items():
        out = out[np.isclose(out[k], v)] if k == "sparsity" else out[out[k] == v]
    return out


def table1(attacks: pd.DataFrame, arch: str, ticket_sparsity: float,
           attack: str = "mlp") -> pd.DataFrame:
    """Rows: dataset and sample size; columns: accuracy and precision (with 95% intervals)
    of ``attack`` on the dense network and on its ticket, averaged over replicates."""
    sel = _sel(attacks, arch=arch, attack=attack, replicate="mean")
    base = _sel(sel, sparsity=0.0)
    tick = _sel(sel, sparsity=ticket_sparsity)
    if base.empty or tick.empty:
        raise ValueError(f"Table 1 needs {attack} attack results for {arch} at sparsity 0 and "
                         f"at {ticket_sparsity} (config keys report.table1_arch, "
                         f"report.table1_sparsity, attack.models)")
    keys = ["dataset", "sample_size"]
    cols = keys + [f"{m}{x}" for m in T1_METRICS for x in ("", "_ci_low", "_ci_high")] + \
        ["replicates"]
    merged = base[cols].merge(tick[cols], on=keys, suffixes=("_baseline", "_ticket"))
    out = merged.copy()
    for side in ("baseline", "ticket"):
        out[f"verdict_{side}"] = [chance_verdict(lo, hi) for lo, hi in
                                  zip(out[f"accuracy_ci_low_{side}"],
                                      out[f"accuracy_ci_high_{side}"])]
    out.insert(2, "attack", attack)
    return out.sort_values(keys).reset_index(drop=True)


def _cell(row, metric: str, side: str) -> str:
    text = fmt_ci(row[f"{metric}_{side}"], row[f"{metric}_ci_low_{side}"],
                  row[f"{metric}_ci_high_{side}"])
    if metric == "accuracy" and row[f"verdict_{side}"] == "at chance":
        text += " (chance)"
    return text


def table1_markdown(t: pd.DataFrame, arch: str, ticket_sparsity: float) -> str:
    reps = int(t["replicates_baseline"].min()) if len(t) else 0
    lines = [
        f"Table 1. Accuracy and precision of the {t['attack'].iat[0]} membership-inference "
        f"attack ({arch}; lottery ticket at sparsity {ticket_sparsity:g}); mean over {reps} "
        "training seed(s), 95% bootstrap interval over the attack-test rows. '(chance)': the "
        "interval covers 0.5.",
        "",
        "| Dataset | Sample size | Accuracy: baseline | Accuracy: lottery ticket "
        "| Precision: baseline | Precision: lottery ticket |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for _, r in t.iterrows():
        lines.append(f"| {r['dataset']} | {r['sample_size']} | {_cell(r, 'accuracy', 'baseline')} "
                     f"| {_cell(r, 'accuracy', 'ticket')} | {_cell(r, 'precision', 'baseline')} "
                     f"| {_cell(r, 'precision', 'ticket')} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- verdicts
def _stacked_scores(paths: list, attack: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(member flags, R x n_test scores, ids) of one attack over replicate score tables."""
    frames = [pd.read_parquet(p) for p in paths]
    ids = frames[0]["sample_id"].to_numpy()
    for p, f in zip(paths, frames):
        if not np.array_equal(f["sample_id"].to_numpy(), ids):
            raise ValueError(f"{p} was attacked on other rows than {paths[0]}; rerun")
    test = (frames[0]["fold"] == "attack_test").to_numpy()
    y = frames[0]["member"].to_numpy()[test]
    s = np.stack([f[f"score_{attack}"].to_numpy()[test] for f in frames])
    return y, s, frames


def verdicts(attacks: pd.DataFrame, score_paths: dict, arch: str, ticket_sparsity: float,
             attack: str = "mlp", n_bootstrap: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Ticket minus dense, per Table 1 row, with a paired-bootstrap 95% interval.

    ``score_paths``: (dataset, sparsity-as-float, sample_size) -> list of replicate score
    files (the same replicate order for both sides), or the list of groups that
    :func:`score_groups` reads.
    """
    if not isinstance(score_paths, dict):
        score_paths = {(g["dataset"], float(g["sparsity"]), int(g["sample_size"])): g["paths"]
                       for g in score_paths}
    rows = []
    per = _sel(attacks, arch=arch, attack=attack)
    per = per[per["replicate"] != "mean"]
    for (ds, n), _ in sorted(per.groupby(["dataset", "sample_size"]).groups.items()):
        dense_paths = score_paths.get((ds, 0.0, n))
        tick_paths = score_paths.get((ds, float(ticket_sparsity), n))
        if not dense_paths or not tick_paths:
            continue
        y, s_dense, _ = _stacked_scores(dense_paths, attack)
        y2, s_tick, _ = _stacked_scores(tick_paths, attack)
        if not np.array_equal(y, y2):
            raise ValueError(f"dense and ticket of {ds} n={n} were attacked on other rows")

        def thresholds(sparsity):
            part = _sel(per, dataset=ds, sample_size=n, sparsity=sparsity)
            return part.sort_values("replicate", key=lambda c: c.astype(int))["threshold"]

        d = paired_difference(y, s_dense, thresholds(0.0).to_numpy(), s_tick,
                              thresholds(ticket_sparsity).to_numpy(),
                              metrics=("accuracy", "auc"), n_boot=n_bootstrap, seed=seed)
        for metric, v in d.items():
            rows.append({"dataset": ds, "sample_size": n, "arch": arch,
                         "ticket_sparsity": ticket_sparsity, "attack": attack,
                         "metric": metric, "dense": v["a"], "ticket": v["b"],
                         "difference": v["difference"], "ci_low": v["ci_low"],
                         "ci_high": v["ci_high"], "excludes_zero": v["excludes_zero"],
                         "replicates": s_dense.shape[0],
                         "sentence": verdict_sentence(ds, n, arch, ticket_sparsity, attack,
                                                      metric, v)})
    return pd.DataFrame(rows)


def verdict_sentence(ds, n, arch, sparsity, attack, metric, v) -> str:
    if v["ci_low"] > 0:
        finding = "the ticket leaks more than its dense parent (the interval excludes 0)"
    elif v["ci_high"] < 0:
        finding = "the ticket leaks less than its dense parent (the interval excludes 0)"
    else:
        finding = ("no significant difference between the ticket and its dense parent "
                   "(the interval includes 0)")
    return (f"{ds}, n={n}: {attack} attack {metric} on the {arch} ticket at sparsity "
            f"{sparsity:g} is {v['b']:.3f} vs {v['a']:.3f} on the dense network, a difference "
            f"of {v['difference']:+.3f} (95% CI {v['ci_low']:+.3f} to {v['ci_high']:+.3f}): "
            f"{finding}.")


# --------------------------------------------------------------------------- attack models
def attack_model_table(attacks: pd.DataFrame, arch: str, ticket_sparsity: float) -> pd.DataFrame:
    """Every attack on Table 1's models at each dataset's largest sample size (the paper's
    Section 4 comparison of attack models, with the threshold baselines beside them)."""
    sel = _sel(attacks, arch=arch, replicate="mean")
    rows = []
    for ds, part in sel.groupby("dataset"):
        n = int(part["sample_size"].max())
        for (attack, kind), a in _sel(part, sample_size=n).groupby(["attack", "kind"]):
            row = {"dataset": ds, "sample_size": n, "attack": attack, "kind": kind}
            for side, s in (("dense", 0.0), ("ticket", ticket_sparsity)):
                r = _sel(a, sparsity=s)
                if r.empty:
                    continue
                r = r.iloc[0]
                for m in ("accuracy", "auc", "tpr_at_fpr_0.01", "tpr_at_fpr_0.001"):
                    row[f"{m}_{side}"] = r[m]
                    row[f"{m}_ci_low_{side}"] = r[f"{m}_ci_low"]
                    row[f"{m}_ci_high_{side}"] = r[f"{m}_ci_high"]
                row[f"verdict_auc_{side}"] = r["verdict_auc"]
            rows.append(row)
    out = pd.DataFrame(rows)
    if not out.empty:
        out = out.sort_values(["dataset", "auc_dense"], ascending=[True, False])
    return out.reset_index(drop=True)


def write_tables(*, attacks_csv, score_paths: dict, arch: str, ticket_sparsity: float,
                 attack: str, n_bootstrap: int, seed: int, out_table1_csv, out_table1_md,
                 out_verdicts, out_attack_models, verdict_attacks: list | None = None) -> None:
    attacks = pd.read_csv(attacks_csv, dtype={"replicate": str})
    t1 = table1(attacks, arch, ticket_sparsity, attack)
    write_csv(t1, out_table1_csv)
    Path(out_table1_md).write_text(table1_markdown(t1, arch, ticket_sparsity))
    names = list(dict.fromkeys([attack] + list(verdict_attacks or [])))
    frames = [verdicts(attacks, score_paths, arch, ticket_sparsity, a, n_bootstrap, seed)
              for a in names]
    write_csv(pd.concat(frames, ignore_index=True), out_verdicts)
    write_csv(attack_model_table(attacks, arch, ticket_sparsity), out_attack_models)


# --------------------------------------------------------------------------- slices
def slices(score_paths: dict, attacks: pd.DataFrame, slice_attacks: list[str],
           n_bootstrap: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per-class and correct/incorrect slices of the attacks on the given models.

    ``score_paths``: (dataset, arch, sparsity, sample_size) -> replicate score files, or a
    list of groups (dicts with those keys and ``paths``).
    """
    if not isinstance(score_paths, dict):
        score_paths = {(g["dataset"], g["arch"], float(g["sparsity"]), int(g["sample_size"])):
                       g["paths"] for g in score_paths}
    rows = []
    for (ds, arch, sparsity, n), paths in sorted(score_paths.items()):
        for attack in slice_attacks:
            y, s, frames = _stacked_scores(paths, attack)
            test = (frames[0]["fold"] == "attack_test").to_numpy()
            part = _sel(attacks, dataset=ds, arch=arch, sparsity=sparsity, sample_size=n,
                        attack=attack)
            part = part[part["replicate"] != "mean"].sort_values(
                "replicate", key=lambda c: c.astype(int))
            thr = part["threshold"].to_numpy()
            labels = frames[0]["label"].to_numpy()[test]
            correct = np.stack([f["correct"].to_numpy()[test] for f in frames])
            base = {"dataset": ds, "arch": arch, "sparsity": sparsity, "sample_size": n,
                    "attack": attack, "replicates": len(frames)}
            for c in np.unique(labels):
                mask = np.broadcast_to(labels == c, s.shape)
                rows.append({**base, "slice": "class", "value": str(int(c)),
                             **slice_metrics(y, s, thr, mask, n_boot=n_bootstrap, seed=seed)})
            for value, mask in (("correct", correct), ("incorrect", ~correct)):
                if mask.any(axis=1).all():
                    rows.append({**base, "slice": "prediction", "value": value,
                                 **slice_metrics(y, s, thr, mask, n_boot=n_bootstrap,
                                                 seed=seed)})
    return pd.DataFrame(rows)


def write_slices(*, attacks_csv, score_paths: dict, slice_attacks: list[str],
                 n_bootstrap: int, seed: int, output) -> pd.DataFrame:
    attacks = pd.read_csv(attacks_csv, dtype={"replicate": str})
    frame = slices(score_paths, attacks, slice_attacks, n_bootstrap, seed)
    write_csv(frame, output)
    return frame
