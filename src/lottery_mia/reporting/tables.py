"""The report's tables: the paper's Table 1 with intervals, the attack-model comparison and
per-class / per-correctness slices (the verdict tables are :mod:`lottery_mia.reporting.verdicts`).
Pure pandas: no torch.

A model is keyed by (dataset, arch, method, sparsity): ``method`` is ``dense`` for the dense
network (sparsity 0) or a ticket-finding method (``oneshot``, ``imp``) or a control
(``random_reinit``, ``random_mask``, ``snip``, ``grasp``); ``sparsity`` is the requested
sparsity (an IMP round can prune more: ``achieved_sparsity``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..stats.metrics import chance_verdict
from ..stats.resampling import slice_metrics
from .summaries import method_means, read_scores, scores_identity
from ..vocabulary import DENSE, MEAN, evaluated, fmt_ci

T1_METRICS = ("accuracy", "precision")


def _sel(attacks: pd.DataFrame, **eq) -> pd.DataFrame:
    out = attacks
    for k, v in eq.items():
        out = out[np.isclose(out[k], v)] if k == "sparsity" else out[out[k] == v]
    return out


def _model(frame: pd.DataFrame, method: str, sparsity: float) -> pd.DataFrame:
    """Rows of one model kind: the dense network (any sparsity given) or ``method`` at
    ``sparsity``."""
    if method == DENSE:
        return _sel(frame, method=DENSE)
    return _sel(frame, method=method, sparsity=sparsity)


SIDES = ("dense", "ticket")


def table1(attacks: pd.DataFrame, arch: str, ticket_sparsity: float,
           attack: str, method: str, training: pd.DataFrame | None = None) -> pd.DataFrame:
    """Rows: dataset and sample size; columns: accuracy and precision (with 95% intervals)
    of ``attack`` on the dense network and on its ``method`` ticket at ``ticket_sparsity``,
    averaged over replicates (suffixes ``_dense`` and ``_ticket``), and, given
    ``training`` (training.csv), both models' test accuracy (mean over seeds with its
    Student-t interval across seeds: ``test_acc_<side>``, ``test_acc_ci_low_<side>`` ...)."""
    sel = _sel(attacks, arch=arch, attack=attack, replicate=MEAN)
    base = _model(sel, DENSE, 0.0)
    tick = _model(sel, method, ticket_sparsity)
    if base.empty or tick.empty:
        raise ValueError(f"Table 1 needs {attack} attack results for the dense {arch} and its "
                         f"{method} ticket at sparsity {ticket_sparsity} (config keys "
                         "report.table1_arch, report.table1_sparsity, report.table1_method, "
                         "attack.models)")
    keys = ["dataset", "sample_size"]
    cols = keys + [f"{m}{x}" for m in T1_METRICS for x in ("", "_ci_low", "_ci_high")] + \
        ["replicates"]
    merged = base[cols].merge(tick[cols], on=keys, suffixes=tuple(f"_{s}" for s in SIDES))
    out = merged.copy()
    for side in SIDES:
        out[f"verdict_{side}"] = [chance_verdict(lo, hi) for lo, hi in
                                  zip(out[f"accuracy_ci_low_{side}"],
                                      out[f"accuracy_ci_high_{side}"])]
    if training is not None:
        means = method_means(training)
        means = means[means["arch"] == arch]
        for side, (m, sp) in zip(SIDES, ((DENSE, 0.0), (method, ticket_sparsity))):
            part = means[(means["method"] == m) & np.isclose(means["sparsity"], sp)]
            acc = part.set_index("dataset")
            for col, src in (("test_acc", "test_acc"), ("test_acc_ci_low", "test_acc_seed_ci_low"),
                             ("test_acc_ci_high", "test_acc_seed_ci_high")):
                out[f"{col}_{side}"] = [float(acc[src].get(d, np.nan)) for d in out["dataset"]]
    out.insert(2, "attack", attack)
    out.insert(3, "method", method)
    return out.sort_values(keys).reset_index(drop=True)


def _cell(row, metric: str, side: str) -> str:
    text = fmt_ci(row[f"{metric}_{side}"], row[f"{metric}_ci_low_{side}"],
                  row[f"{metric}_ci_high_{side}"])
    if metric == "accuracy" and row[f"verdict_{side}"] == "at chance":
        text += " (chance)"
    return text


def table1_markdown(t: pd.DataFrame, arch: str, ticket_sparsity: float, method: str) -> str:
    reps = int(t["replicates_dense"].min()) if len(t) else 0
    metrics = (["test_acc"] if "test_acc_dense" in t else []) + ["accuracy", "precision"]
    names = {"test_acc": "Test accuracy", "accuracy": "Attack accuracy",
             "precision": "Attack precision"}
    lines = [
        f"Table 1. Accuracy and precision of the {t['attack'].iat[0]} membership-inference "
        f"attack ({arch}; {method} lottery ticket at sparsity {ticket_sparsity:g}) and the "
        f"models' test accuracy; mean over {reps} training seed(s). Attack metrics: 95% "
        "bootstrap interval over the attack-test rows ('(chance)': it covers 0.5); test "
        "accuracy: 95% interval across seeds.",
        "",
        "| Dataset | Sample size | "
        + " | ".join(f"{names[m]}: {side}" for m in metrics for side in SIDES) + " |",
        "|---|---:|" + "---:|" * (2 * len(metrics)),
    ]
    for _, r in t.iterrows():
        lines.append(f"| {r['dataset']} | {r['sample_size']} | "
                     + " | ".join(_cell(r, m, side) for m in metrics for side in SIDES)
                     + " |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- shared
def _stacked_scores(paths: list, attack: str, kind: str, key: tuple
                    ) -> tuple[np.ndarray, np.ndarray, list]:
    """(member flags, R x n scores, frames) of one attack over replicate score tables, on
    the rows the attack is evaluated on (:func:`vocabulary.evaluated`; the frames cut to
    those rows). ``key``: (dataset, arch, method, sparsity, sample_size) the tables must
    record, their replicates distinct and in increasing order (the thresholds' order)."""
    expected = dict(zip(("dataset", "arch", "method", "sparsity", "sample_size"), key))
    frames = [read_scores(p, expected) for p in paths]
    reps = [scores_identity(p)["replicate"] for p in paths]
    if any(int(a) >= int(b) for a, b in zip(reps, reps[1:])):
        raise ValueError(f"the score tables {[str(p) for p in paths]} record the seeds {reps}, "
                         "not distinct seeds in increasing order (a file copied from another "
                         "seed's folder?); delete the wrong one and rerun its fit_attack rule")
    ids = frames[0]["sample_id"].to_numpy()
    for p, f in zip(paths, frames):
        if not np.array_equal(f["sample_id"].to_numpy(), ids):
            raise ValueError(f"{p} was attacked on other rows than {paths[0]}; rerun")
    rows = evaluated(frames[0]["fold"].to_numpy(), kind,
                     frames[0][f"score_{attack}"].to_numpy())
    y = frames[0]["member"].to_numpy()[rows]
    s = np.stack([f[f"score_{attack}"].to_numpy()[rows] for f in frames])
    return y, s, [f[rows].reset_index(drop=True) for f in frames]


def kind_of(attacks: pd.DataFrame, attack: str) -> str:
    """The kind (classifier, threshold, reference) of ``attack`` in attacks.csv."""
    kinds = attacks.loc[attacks["attack"] == attack, "kind"]
    if kinds.empty:
        raise ValueError(f"no results of the {attack!r} attack in attacks.csv")
    return str(kinds.iat[0])


def _group_key(g: dict) -> tuple:
    """(dataset, arch, method, sparsity, sample_size) of a group dict."""
    return (g["dataset"], g.get("arch"), g["method"], float(g["sparsity"]),
            int(g["sample_size"]))


def _thresholds(per: pd.DataFrame, **eq) -> np.ndarray:
    """Per-replicate thresholds of one model (``per``: attacks.csv rows without the mean
    rows), in replicate order."""
    part = _sel(per, **eq)
    return part.sort_values("replicate", key=lambda c: c.astype(int))["threshold"].to_numpy()


# --------------------------------------------------------------------------- attack models
def estimator_breaks(attacks: pd.DataFrame, dataset: str, attack: str) -> list[tuple]:
    """Where ``attack`` fits another estimator from one sample size to the next on
    ``dataset`` (the SVM above attack.svm.exact_max_rows, the MLP's early stopping from
    attack.mlp.early_stopping_min_rows): (n below, n above, fit below, fit above) from the
    mean rows' ``fit`` column, so that a sweep over sample sizes does not pass an estimator
    change off as a sample-size effect (Figure 3 marks them, the attack-model table says
    so)."""
    if "fit" not in attacks:
        return []
    sel = attacks[(attacks["dataset"] == dataset) & (attacks["attack"] == attack)
                  & (attacks["replicate"] == MEAN)]
    fits = {}
    for n, part in sel.groupby("sample_size"):
        texts = sorted({str(f) for f in part["fit"] if isinstance(f, str) and f})
        if texts:
            fits[int(n)] = "; ".join(texts)
    sizes = sorted(fits)
    return [(a, b, fits[a], fits[b]) for a, b in zip(sizes, sizes[1:]) if fits[a] != fits[b]]


def attack_model_table(attacks: pd.DataFrame, arch: str, ticket_sparsity: float,
                       method: str) -> pd.DataFrame:
    """Every attack on Table 1's models (the dense network and its ``method`` ticket) at
    each dataset's largest sample size (the paper's Section 4 comparison of attack models,
    with the threshold baselines beside them); ``fit_<side>`` says what a classifier attack
    fitted (the exact SVC or its approximation above ``attack.svm.exact_max_rows``...)."""
    sel = _sel(attacks, arch=arch, replicate=MEAN)
    sel = sel[(sel["method"] == DENSE) | (sel["method"] == method)]
    rows = []
    for ds, part in sel.groupby("dataset"):
        n = int(part["sample_size"].max())
        for (attack, kind), a in _sel(part, sample_size=n).groupby(["attack", "kind"]):
            row = {"dataset": ds, "sample_size": n, "method": method, "attack": attack,
                   "kind": kind}
            for side, m_, s in (("dense", DENSE, 0.0), ("ticket", method, ticket_sparsity)):
                r = _model(a, m_, s)
                if r.empty:
                    continue
                r = r.iloc[0]
                for col in ("n_eval_members", "n_eval_nonmembers", "min_fpr", "n_references",
                            "fit", "attack_seconds"):
                    if col in r and pd.notna(r[col]):
                        row[f"{col}_{side}"] = r[col]
                for m in ("accuracy", "balanced_accuracy", "auc", "tpr_at_fpr_0.1",
                          "tpr_at_fpr_0.01", "tpr_at_fpr_0.001"):
                    row[f"{m}_{side}"] = r[m]
                    row[f"{m}_ci_low_{side}"] = r[f"{m}_ci_low"]
                    row[f"{m}_ci_high_{side}"] = r[f"{m}_ci_high"]
                row[f"verdict_auc_{side}"] = r["verdict_auc"]
            breaks = estimator_breaks(attacks, ds, attack)
            row["fit_across_sizes"] = "; ".join(
                f"{fa} up to n={a}, {fb} from n={b}" for a, b, fa, fb in breaks)
            rows.append(row)
    out = pd.DataFrame(rows)
    if not out.empty and "auc_dense" in out:
        out = out.sort_values(["dataset", "auc_dense"], ascending=[True, False])
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------- slices
def slices(score_paths, attacks: pd.DataFrame, slice_attacks: list[str],
           n_bootstrap: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per-class and correct/incorrect slices of the attacks on the given models.

    ``score_paths``: (dataset, arch, method, sparsity, sample_size) -> replicate score
    files, or a list of groups (dicts with those keys and ``paths``).
    """
    if not isinstance(score_paths, dict):
        score_paths = {_group_key(g): g["paths"] for g in score_paths}
    rows = []
    for (ds, arch, method, sparsity, n), paths in sorted(score_paths.items()):
        for attack in slice_attacks:
            kind = kind_of(attacks, attack)
            y, s, frames = _stacked_scores(paths, attack, kind,
                                           (ds, arch, method, sparsity, n))
            test = evaluated(frames[0]["fold"].to_numpy(), kind,
                             frames[0][f"score_{attack}"].to_numpy())
            part = _sel(attacks, dataset=ds, arch=arch, method=method, sparsity=sparsity,
                        sample_size=n, attack=attack)
            part = part[part["replicate"] != MEAN].sort_values(
                "replicate", key=lambda c: c.astype(int))
            thr = part["threshold"].to_numpy()
            labels = frames[0]["label"].to_numpy()[test]
            correct = np.stack([f["correct"].to_numpy()[test] for f in frames])
            base = {"dataset": ds, "arch": arch, "method": method, "sparsity": sparsity,
                    "sample_size": n, "attack": attack, "replicates": len(frames)}
            for c in np.unique(labels):
                mask = np.broadcast_to(labels == c, s.shape)
                rows.append({**base, "slice": "class", "value": str(int(c)),
                             **slice_metrics(y, s, thr, mask, n_boot=n_bootstrap, seed=seed,
                                             strata=labels)})
            for value, mask in (("correct", correct), ("incorrect", ~correct)):
                if mask.any(axis=1).all():
                    rows.append({**base, "slice": "prediction", "value": value,
                                 **slice_metrics(y, s, thr, mask, n_boot=n_bootstrap,
                                                 seed=seed, strata=labels)})
    return pd.DataFrame(rows)
