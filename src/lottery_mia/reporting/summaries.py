"""The summary tables of a run, read and computed: training, attacks (with intervals, per
replicate and averaged over replicates), the correlation of generalisation gap and attack
success. Pure pandas/numpy: no torch. The jobs that write them are in
:mod:`lottery_mia.jobs.summarize`.

Models are keyed by (dataset, arch, method, sparsity) (:mod:`lottery_mia.vocabulary`).
``attacks.csv`` holds one row per (dataset, arch, method, sparsity, replicate, sample_size,
attack): ``replicate`` is the training seed, or ``mean`` for the average over all
replicates. Every metric ``m`` has ``m_ci_low`` / ``m_ci_high`` beside it: a 95% percentile
bootstrap over the attack-test rows (for ``mean`` rows, the same resampled rows for every
replicate, metric averaged over replicates). ``mean`` rows also give ``m_seed_ci_low`` /
``m_seed_ci_high``, a Student-t interval across the replicates' values (the spread due to
training seeds).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..io import read_csv_table, read_json, read_parquet_frame
from ..stats.metrics import POINT_METRICS, chance_verdict, mean_ci, spearman_ci
from ..stats.resampling import bootstrap_metrics
from ..vocabulary import (ATTACK_COLUMNS, MEAN, MODEL_KEYS, REFERENCE, SAME_ROWS_METRICS,
                         TRAINING_COLUMNS, TRANSFER_COLUMNS, evaluated, fit_text)


# --------------------------------------------------------------------------- readers
def read_training_csv(path) -> pd.DataFrame:
    """``summary/training.csv``; one without its columns is an error naming it."""
    return read_csv_table(path, "training summary", TRAINING_COLUMNS,
                          "delete it and rerun the summarize_training rule")


def read_attacks_csv(path) -> pd.DataFrame:
    """``summary/attacks.csv`` (replicate as text: seeds and ``mean``); one without its
    columns is an error naming it."""
    return read_csv_table(path, "attack summary", ATTACK_COLUMNS,
                          "delete it and rerun the summarize_attacks rule",
                          dtype={"replicate": str})


def read_transfer_csv(path) -> pd.DataFrame:
    """``summary/transfer.csv`` (or one transfer job's table)."""
    return read_csv_table(path, "transfer table", TRANSFER_COLUMNS,
                          "delete it and rerun the transfer rules")


def read_slices_csv(path) -> pd.DataFrame:
    return read_csv_table(path, "slice table", MODEL_KEYS + ["attack", "slice", "value"],
                          "delete it and rerun the slices rule")


SCORES_IDENTITY = ("dataset", "arch", "method", "sparsity", "replicate", "sample_size")
_SCORES_META = b"lottery_mia"


def write_scores(scores: pd.DataFrame, identity: dict, path) -> None:
    """A fit-attack job's scores table (``scores.parquet``) with the identity of the model
    and sample it scored (:data:`SCORES_IDENTITY`) in the Parquet file's metadata: a file
    copied into another model's folder is refused by :func:`read_scores`."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..io import atomic_path

    missing = [k for k in SCORES_IDENTITY if k not in identity]
    if missing:
        raise ValueError(f"the identity of {path} lacks {missing}")
    table = pa.Table.from_pandas(scores, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[_SCORES_META] = json.dumps({k: identity[k] for k in SCORES_IDENTITY}).encode()
    with atomic_path(path) as tmp:
        pq.write_table(table.replace_schema_metadata(meta), tmp)


def scores_identity(path) -> dict | None:
    """The identity recorded in a scores table (``None``: written by an earlier version)."""
    import json

    import pyarrow.parquet as pq

    try:
        raw = (pq.read_schema(path).metadata or {}).get(_SCORES_META)
    except Exception as err:  # noqa: BLE001 - every failure becomes one clear message
        raise ValueError(f"{path} is not a readable attack scores table ({err}); delete it "
                         "and rerun the fit_attack rule of its model") from None
    return json.loads(raw) if raw else None


def same_identity_value(key: str, got, want) -> bool:
    """Whether a recorded identity value ``got`` is ``want`` (sparsities to 1e-9; seeds and
    sample sizes however they were written, 0 or "0")."""
    if key == "sparsity":
        return got is not None and abs(float(got) - float(want)) < 1e-9
    if key in ("replicate", "sample_size"):
        return got is not None and str(got) == str(want)
    return got == want


def read_scores(path, expected: dict | None = None) -> pd.DataFrame:
    """A fit-attack job's scores table (``scores.parquet``). With ``expected`` (some keys
    of :data:`SCORES_IDENTITY`), the table must be that model's: a table of another model
    or seed (a file swapped or copied by hand), or one without an identity, is an error
    naming the file and the key that differs."""
    remedy = "delete it and rerun the fit_attack rule of its model"
    if expected:
        ident = scores_identity(path)
        if ident is None:
            raise ValueError(f"{path} does not record which model it scored (written by an "
                             f"earlier version); {remedy}")
        for key, want in expected.items():
            if not same_identity_value(key, ident.get(key), want):
                raise ValueError(f"{path} holds the attack scores of the model with "
                                 f"{key}={ident.get(key)!r}, but it is read as the one with "
                                 f"{key}={want!r} (a file copied or moved by hand?); {remedy}")
    return read_parquet_frame(path, "attack scores table", remedy)


def read_attack_results(metric_path) -> list[dict]:
    """The per-attack rows of one fit-attack result (``attack-n<N>/metrics.json``)."""
    m = read_json(metric_path)
    base = {"dataset": m["dataset"], "arch": m["arch"], "method": m["method"],
            "sparsity": float(m["sparsity"]),
            "achieved_sparsity": float(m["achieved_sparsity"]),
            "replicate": str(m["replicate"]), "sample_size": int(m["sample_size"]),
            "features": m.get("features")}
    return [{**base, **{k: v for k, v in r.items() if not isinstance(v, (dict, list))}}
            for r in m["attacks"]]


# --------------------------------------------------------------------------- statistics
def replicate_mean_rows(groups: dict, n_bootstrap: int, seed: int) -> list[dict]:
    """``groups``: (dataset, arch, method, sparsity, sample_size) -> list of (rows, scores
    frame)."""
    out = []
    for (ds, arch, method, sparsity, n), members in sorted(groups.items()):
        frames = [s for _, s in members]
        ids = frames[0]["sample_id"].to_numpy()
        for f in frames[1:]:
            if not np.array_equal(f["sample_id"].to_numpy(), ids):
                raise ValueError(f"replicates of {ds}/{arch}/{method}/sparsity {sparsity} n={n} were "
                                 "attacked on different rows; rerun their fit_attack jobs")
        fold = frames[0]["fold"].to_numpy()
        member = frames[0]["member"].to_numpy()
        by_attack: dict[str, list[dict]] = {}
        for rows, _ in members:
            for r in rows:
                by_attack.setdefault(r["attack"], []).append(r)
        for attack, reps in by_attack.items():
            col = f"score_{attack}"
            rows_eval = evaluated(fold, reps[0]["kind"],  # the rows the attack is judged on
                                  frames[0][col].to_numpy())
            y = member[rows_eval]
            s = np.stack([f[col].to_numpy()[rows_eval] for f in frames])
            thr = np.array([r["threshold"] for r in reps])
            labels = frames[0]["label"].to_numpy()  # the design's strata
            m = bootstrap_metrics(y, s, thr, n_boot=n_bootstrap, seed=seed,
                                  strata=labels[rows_eval])
            if reps[0]["kind"] == REFERENCE:  # and on the classifiers' rows
                test = (fold == "attack_test") & np.isfinite(frames[0][col].to_numpy())
                same = bootstrap_metrics(member[test], np.stack([f[col].to_numpy()[test]
                                                                 for f in frames]),
                                         thr, n_boot=n_bootstrap, seed=seed,
                                         strata=labels[test])
                m.update({f"same_rows_{k}{x}": same[f"{k}{x}"] for k in SAME_ROWS_METRICS
                          for x in ("", "_ci_low", "_ci_high")})
            row = {"dataset": ds, "arch": arch, "method": method, "sparsity": sparsity,
                   "achieved_sparsity": float(np.mean([r["achieved_sparsity"] for r in reps])),
                   "replicate": MEAN, "sample_size": n, "attack": attack,
                   "kind": reps[0].get("kind"), "replicates": len(reps), **m}
            if reps[0].get("n_references") is not None:
                row["n_references"] = reps[0]["n_references"]
            secs = [r["attack_seconds"] for r in reps if r.get("attack_seconds") is not None]
            if secs:  # the cost of one attack on one network (its references aside)
                row["attack_seconds"] = float(np.mean(secs))
            fits = sorted({fit_text(r) for r in reps} - {""})
            if fits:  # what the replicates' classifiers fitted (the SVM above its cap...)
                row["fit"] = "; ".join(fits)
            for k in POINT_METRICS:
                _, row[f"{k}_seed_ci_low"], row[f"{k}_seed_ci_high"] = mean_ci(
                    [r[k] for r in reps])
            acc = "balanced_accuracy" if reps[0]["kind"] == REFERENCE else "accuracy"
            row["verdict_accuracy"] = chance_verdict(m[f"{acc}_ci_low"],
                                                     m[f"{acc}_ci_high"])
            row["verdict_auc"] = chance_verdict(m["auc_ci_low"], m["auc_ci_high"])
            out.append(row)
    return out


def method_means(training: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, arch, method, requested sparsity): replicates, the mean achieved
    sparsity and the mean test/train accuracy and gap with a Student-t interval across
    seeds (accuracy intervals clipped to [0, 1]; nan for a single seed)."""
    rows = []
    for key, part in training.groupby(MODEL_KEYS, sort=True):
        row = dict(zip(MODEL_KEYS, key))
        row["method_kind"] = str(part["method_kind"].iloc[0])
        row["replicates"] = len(part)
        row["achieved_sparsity"] = float(part["achieved_sparsity"].mean())
        for k in ("test_acc", "train_acc", "generalization_gap"):
            if k not in part:
                continue
            row[k], lo, hi = mean_ci(part[k])
            if k != "generalization_gap":
                lo, hi = max(lo, 0.0), min(hi, 1.0)
            row[f"{k}_seed_ci_low"], row[f"{k}_seed_ci_high"] = lo, hi
        rows.append(row)
    return pd.DataFrame(rows)




def gap_correlation(training: pd.DataFrame, attacks: pd.DataFrame, sample_size: int,
                    attack: str) -> tuple[pd.DataFrame, dict]:
    """Generalisation gap (train - test accuracy) against ``attack``'s AUC, one row per model
    and seed at ``sample_size``, and their Spearman rank correlation (rho with a Fisher-z
    interval, p-value) over the models, each the mean of its seeds: the seeds of one model
    are not independent points (they share the model's configuration), so the correlation
    is taken over models, not over (model, seed) pairs."""
    from scipy.stats import spearmanr

    sel = attacks[(attacks["attack"] == attack) & (attacks["replicate"].astype(str) != MEAN)
                  & (attacks["sample_size"] == sample_size)].copy()
    sel["replicate"] = sel["replicate"].astype(int)
    keys = MODEL_KEYS + ["replicate"]
    tr = training.copy()
    tr["sparsity"] = tr["sparsity"].round(6)
    sel["sparsity"] = sel["sparsity"].round(6)
    merged = sel.merge(tr[keys + ["generalization_gap"]], on=keys)
    per_model = merged.groupby(MODEL_KEYS)[["generalization_gap", "auc"]].mean()
    if len(per_model) < 2:
        raise ValueError(f"the gap correlation needs at least two models with {attack} "
                         f"results at n={sample_size} (config key report.figure2_sample_size)")
    rho, pval = spearmanr(per_model["generalization_gap"], per_model["auc"])
    lo, hi = spearman_ci(float(rho), len(per_model))
    return merged, {"spearman_rho": float(rho), "spearman_rho_ci_low": lo,
                    "spearman_rho_ci_high": hi, "p_value": float(pval),
                    "models": int(len(per_model)), "points": int(len(merged)),
                    "seeds": int(merged["replicate"].nunique()),
                    "unit": "models (each the mean of its seeds)"}
