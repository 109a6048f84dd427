"""Summary tables of a run: training, attacks (with intervals, per replicate and averaged
over replicates) and transfer. Pure pandas/numpy: no torch.

Models are keyed by (dataset, arch, method, sparsity): ``method`` is the pruning method
(``dense`` for the dense network at sparsity 0), ``sparsity`` the configured one, and
``achieved_sparsity`` the exact fraction of prunable weights the model's mask removes (an
IMP round serving sparsity s can sit above s).

``attacks.csv`` holds one row per (dataset, arch, method, sparsity, replicate, sample_size,
attack):
``replicate`` is the training seed, or ``mean`` for the average over all replicates. Every
metric ``m`` has ``m_ci_low`` / ``m_ci_high`` beside it: a 95% percentile bootstrap over the
attack-test rows (for ``mean`` rows, the same resampled rows for every replicate, metric
averaged over replicates). ``mean`` rows also give ``m_seed_ci_low`` / ``m_seed_ci_high``, a
Student-t interval across the replicates' values (the spread due to training seeds).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .io import atomic_path, log, read_csv_table, read_json, read_parquet_frame
from .metrics import POINT_METRICS, bootstrap_metrics, chance_verdict, mean_ci, proportion_ci

MODEL_KEYS = ["dataset", "arch", "method", "sparsity"]
ATTACK_KEYS = ["dataset", "arch", "method", "sparsity", "replicate", "sample_size", "attack"]


def default_method(sparsity) -> str:
    """The method of a result written before methods existed: dense at 0, else one-shot."""
    return "dense" if not float(sparsity) else "oneshot"


def write_csv(frame: pd.DataFrame, output) -> None:
    with atomic_path(output) as tmp:
        frame.to_csv(tmp, index=False)
    log(f"wrote {output} ({len(frame)} rows)")


# --------------------------------------------------------------------------- training
def summarize_training(metric_paths: list, membership_paths: dict, output,
                       models: list[dict] | None = None) -> pd.DataFrame:
    """One row per model (replicate), with Wilson intervals on the accuracies.

    ``models`` (aligned with ``metric_paths``): dicts with the model's ``method``, configured
    ``sparsity`` and ``kind``, for the rows whose network serves a configured sparsity it
    does not name (an IMP round)."""
    sizes = {}
    for ds, path in membership_paths.items():
        table = read_parquet_frame(path, "membership table",
                                   "delete it and rerun the membership_split rule")
        sizes[ds] = (int(table["member"].sum()), int((~table["member"]).sum()))
    rows, seen = [], {}
    for i, p in enumerate(metric_paths):
        m = read_json(p)
        key = (m.get("dataset"), m.get("arch"), int(m.get("seed", -1)),
               (models[i].get("method") if models is not None else None) or m.get("method"),
               float(models[i]["sparsity"]) if models is not None else m.get("sparsity"))
        if key in seen:
            raise ValueError(f"{seen[key]} and {p} describe the same network "
                             f"(dataset, arch, seed, method, sparsity = {key}): one is a copy "
                             "of the other; delete the wrong one's folder and rerun")
        seen[key] = p
        spec = models[i] if models is not None else {}
        clashes = []
        if spec.get("method") and m.get("method") and spec["method"] != m["method"]:
            clashes.append(("method", m["method"], spec["method"]))
        if isinstance(spec.get("replicate"), int) and m.get("seed") is not None \
                and int(m["seed"]) != spec["replicate"]:
            clashes.append(("seed", m["seed"], spec["replicate"]))
        for k, mine, folder in clashes:
            raise ValueError(f"{p} describes a network with {k} {mine!r}, but it sits in the "
                             f"folder of {k} {folder!r} (copied by hand?); delete it and rerun "
                             "the workflow")
        mask = m.get("mask", {})
        n_train, n_test = sizes[m["dataset"]]
        sparsity = float(spec.get("sparsity", m["sparsity"]))
        method = spec.get("method") or m.get("method") or default_method(sparsity)
        row = {
            "dataset": m["dataset"], "arch": m["arch"], "method": method,
            "method_kind": spec.get("kind", "dense" if method == "dense" else "ticket"),
            "sparsity": sparsity,
            "achieved_sparsity": float(mask.get("sparsity_prunable", 0.0)),
            "imp_round": m.get("imp_round"),
            "replicate": int(m["seed"]),
            "test_acc": m["test_acc"], "train_acc": m["train_acc"],
            "generalization_gap": m["train_acc"] - m["test_acc"],
            "n_train": n_train, "n_test": n_test,
            "measured_sparsity_prunable": m.get("measured_sparsity_prunable", 0.0),
            "sparsity_all_parameters": mask.get("sparsity_all_parameters", 0.0),
            "epochs": m["recipe"]["epochs"], "rewind_epoch": m["rewind_epoch"],
            "rewind_step": m.get("rewind_step"), "start": m.get("start", "dense"),
            "train_seconds": m["train_seconds"], "device": m["device"],
        }
        for k, n in (("test_acc", n_test), ("train_acc", n_train)):
            row[f"{k}_ci_low"], row[f"{k}_ci_high"] = proportion_ci(round(m[k] * n), n)
        rows.append(row)
    frame = pd.DataFrame(rows).sort_values(MODEL_KEYS + ["replicate"]).reset_index(drop=True)
    write_csv(frame, output)
    return frame


def training_means(training: pd.DataFrame) -> pd.DataFrame:
    """Mean test/train accuracy per model over replicates, with Student-t seed intervals
    (clipped to [0, 1]; with two seeds they are wide, t = 12.7: add seeds to narrow them)."""
    rows = []
    for key, part in training.groupby(MODEL_KEYS):
        row = dict(zip(MODEL_KEYS, key))
        row["replicates"] = len(part)
        if "achieved_sparsity" in part:
            row["achieved_sparsity"] = float(part["achieved_sparsity"].mean())
        for k in ("test_acc", "train_acc", "generalization_gap"):
            row[k], lo, hi = mean_ci(part[k])
            if k != "generalization_gap":  # an accuracy's interval stays within [0, 1]
                lo, hi = max(lo, 0.0), min(hi, 1.0)
            row[f"{k}_seed_ci_low"], row[f"{k}_seed_ci_high"] = lo, hi
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- attacks
def read_attack_results(metric_path) -> list[dict]:
    m = read_json(metric_path)
    sparsity = float(m["sparsity"])
    base = {"dataset": m["dataset"], "arch": m["arch"],
            "method": m.get("method") or default_method(sparsity), "sparsity": sparsity,
            "achieved_sparsity": float(m.get("achieved_sparsity", sparsity)),
            "replicate": str(m["replicate"]), "sample_size": int(m["sample_size"]),
            "features": m.get("features")}
    return [{**base, **{k: v for k, v in r.items() if not isinstance(v, (dict, list))}}
            for r in m["attacks"]]


def read_scores(path) -> pd.DataFrame:
    """A fit-attack job's scores table (``scores.parquet``)."""
    return read_parquet_frame(path, "attack scores table",
                              "delete it and rerun the fit_attack rule of its model")


TRAINING_COLUMNS = MODEL_KEYS + ["replicate", "test_acc", "train_acc"]
ATTACK_COLUMNS = ATTACK_KEYS + ["threshold", "accuracy", "auc"]


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
        test = (frames[0]["fold"] == "attack_test").to_numpy()
        y = frames[0]["member"].to_numpy()[test]
        by_attack: dict[str, list[dict]] = {}
        for rows, _ in members:
            for r in rows:
                by_attack.setdefault(r["attack"], []).append(r)
        for attack, reps in by_attack.items():
            col = f"score_{attack}"
            s = np.stack([f[col].to_numpy()[test] for f in frames])
            thr = np.array([r["threshold"] for r in reps])
            m = bootstrap_metrics(y, s, thr, n_boot=n_bootstrap, seed=seed)
            row = {"dataset": ds, "arch": arch, "method": method, "sparsity": sparsity,
                   "achieved_sparsity": float(np.mean([r["achieved_sparsity"] for r in reps])),
                   "replicate": "mean", "sample_size": n, "attack": attack,
                   "kind": reps[0].get("kind"), "replicates": len(reps), **m}
            for k in POINT_METRICS:
                _, row[f"{k}_seed_ci_low"], row[f"{k}_seed_ci_high"] = mean_ci(
                    [r[k] for r in reps])
            row["verdict_accuracy"] = chance_verdict(m["accuracy_ci_low"],
                                                     m["accuracy_ci_high"])
            row["verdict_auc"] = chance_verdict(m["auc_ci_low"], m["auc_ci_high"])
            out.append(row)
    return out


def summarize_attacks(metric_paths: list, score_paths: list, output, *,
                      n_bootstrap: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per-replicate attack rows plus the replicate-mean rows (see the module doc)."""
    rows, groups, seen, results_of = [], {}, {}, []
    for mp in metric_paths:
        results = read_attack_results(mp)
        results_of.append(results)
        for r in results:
            key = tuple(r[k] for k in ATTACK_KEYS)
            if key in seen:
                raise ValueError(
                    f"{seen[key]} and {mp} hold results for the same model, sample size and "
                    f"attack ({dict(zip(ATTACK_KEYS, key))}): one of them is a copy of "
                    "another model's results; delete the wrong one's folder and rerun the "
                    "workflow")
            seen[key] = mp
    for results, sp in zip(results_of, score_paths, strict=True):
        rows += results
        r0 = results[0]
        key = (r0["dataset"], r0["arch"], r0["method"], r0["sparsity"], r0["sample_size"])
        groups.setdefault(key, []).append((results, read_scores(sp)))
    rows += replicate_mean_rows(groups, n_bootstrap, seed)
    frame = pd.DataFrame(rows)
    frame["_mean"] = frame["replicate"] == "mean"
    frame = frame.sort_values(["dataset", "arch", "method", "sparsity", "sample_size", "attack",
                               "_mean", "replicate"]).drop(columns="_mean").reset_index(drop=True)
    lead = ATTACK_KEYS + ["kind"]
    frame = frame[lead + [c for c in frame.columns if c not in lead]]
    write_csv(frame, output)
    return frame


def summarize_transfer(paths: list, dataset: str, replicate: int, output) -> pd.DataFrame:
    frame = pd.concat([read_csv_table(p, "transfer table", ["target_arch", "accuracy"],
                                      "delete it and rerun its transfer_attack job")
                       for p in paths], ignore_index=True)
    frame.insert(0, "dataset", dataset)
    frame.insert(1, "replicate", replicate)
    frame = frame.sort_values([c for c in ("source_arch", "source_method", "source_sparsity",
                                           "target_arch", "target_method", "target_sparsity")
                               if c in frame.columns])
    write_csv(frame, output)
    return frame
