"""The summary jobs of the DAG: the training, attack and transfer tables of a run, the gap
correlation, and Snakemake's per-job benchmark records as one table."""

from __future__ import annotations

import pandas as pd

from ..io import log, read_json, read_parquet_frame, write_csv, write_json
from ..stats.metrics import proportion_ci
from ..reporting.summaries import (gap_correlation, read_attack_results, read_attacks_csv,
                                   read_scores, read_training_csv, read_transfer_csv,
                                   replicate_mean_rows, same_identity_value)
from ..vocabulary import ATTACK_KEYS, DENSE, MEAN, MODEL_KEYS

__all__ = ["summarize_training", "summarize_attacks", "summarize_transfer",
           "summarize_benchmarks", "write_gap_correlation"]


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
        method = spec.get("method") or m["method"]
        row = {
            "dataset": m["dataset"], "arch": m["arch"], "method": method,
            "method_kind": spec.get("kind", DENSE if method == DENSE else "ticket"),
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
        if "privacy" in m:  # DP-SGD: this run's epsilon and the composed one (columns
            # only in runs with a DP recipe: the tables of other runs keep their shape)
            row["epsilon"] = m["privacy"]["epsilon"]
            row["epsilon_total"] = m["privacy"]["epsilon_total"]
            row["dp_delta"] = m["privacy"]["delta"]
        rows.append(row)
    frame = pd.DataFrame(rows).sort_values(MODEL_KEYS + ["replicate"]).reset_index(drop=True)
    write_csv(frame, output)
    return frame



# --------------------------------------------------------------------------- attacks
def summarize_attacks(metric_paths: list, score_paths: list, output, *,
                      n_bootstrap: int = 1000, seed: int = 0,
                      models: list[dict] | None = None) -> pd.DataFrame:
    """Per-replicate attack rows plus the replicate-mean rows (see the module doc).
    ``models`` (aligned with the paths): the model and sample size each result belongs to
    (:meth:`lottery_mia.plan.Plan.attack_result_models`); a result file of another model,
    seed or sample size (copied or swapped by hand) is refused, naming the key."""
    rows, groups, seen, results_of = [], {}, {}, []
    if models is not None and len(models) != len(metric_paths):
        raise ValueError(f"{len(models)} models for {len(metric_paths)} attack results")
    for i, mp in enumerate(metric_paths):
        results = read_attack_results(mp)
        if models is not None:
            check_result_identity(mp, results[0], models[i])
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
        ident = {k: r0[k] for k in ("dataset", "arch", "method", "sparsity", "replicate",
                                    "sample_size")}
        groups.setdefault(key, []).append((results, read_scores(sp, ident)))
    rows += replicate_mean_rows(groups, n_bootstrap, seed)
    frame = pd.DataFrame(rows)
    frame["_mean"] = frame["replicate"] == MEAN
    frame = frame.sort_values(["dataset", "arch", "method", "sparsity", "sample_size", "attack",
                               "_mean", "replicate"]).drop(columns="_mean").reset_index(drop=True)
    lead = ATTACK_KEYS + ["kind"]
    frame = frame[lead + [c for c in frame.columns if c not in lead]]
    write_csv(frame, output)
    return frame


def check_result_identity(path, result: dict, expected: dict) -> None:
    """Refuse a per-model result (``metrics.json`` of an attack, a transfer row) that is
    not the one of the model the plan expects at ``path``: a copied or swapped file."""
    for key, want in expected.items():
        got = result.get(key)
        if not same_identity_value(key, got, want):
            raise ValueError(f"{path} holds the results of the model with {key}={got!r}, but "
                             f"the plan expects the one with {key}={want!r} there (a file "
                             "copied or moved by hand?); delete it and rerun the rule that "
                             "writes it")


def summarize_transfer(paths: list, dataset: str, replicate: int, output,
                       sources: list[dict] | None = None) -> pd.DataFrame:
    """One table of every transfer job's rows; ``sources`` (aligned with ``paths``): the
    source model each file must hold (arch, method, sparsity)."""
    frames = [read_transfer_csv(p) for p in paths]
    for i, (p, f) in enumerate(zip(paths, frames)):
        if sources is None:
            break
        for _, row in f.iterrows():
            check_result_identity(p, {k: row[f"source_{k}"] for k in sources[i]}, sources[i])
    frame = pd.concat(frames, ignore_index=True)
    frame.insert(0, "dataset", dataset)
    frame.insert(1, "replicate", replicate)
    frame = frame.sort_values(["source_arch", "source_method", "source_sparsity",
                               "target_arch", "target_method", "target_sparsity"])
    write_csv(frame, output)
    return frame


def write_gap_correlation(*, training_csv, attacks_csv, sample_size: int, attack: str,
                          output) -> dict:
    """``summary/gap_correlation.json``: generalisation gap vs attack AUC over the models
    (:func:`lottery_mia.reporting.summaries.gap_correlation`)."""
    _, stats = gap_correlation(read_training_csv(training_csv), read_attacks_csv(attacks_csv),
                               sample_size, attack)
    stats = {**stats, "attack": attack, "sample_size": sample_size}
    write_json(stats, output)
    log(f"gap vs {attack} AUC at n={sample_size}: Spearman rho {stats['spearman_rho']:.3f} "
        f"over {stats['models']} models -> {output}")
    return stats


def summarize_benchmarks(directory, output, logs=None) -> pd.DataFrame:
    """Snakemake's benchmark records under ``directory`` as one table (with ``logs``, the
    jobs' logs folder: a forked job's memory and CPU time from its log)."""
    from ..benchmarks import benchmark_table

    table = benchmark_table(directory, logs)
    write_csv(table, output)
    if len(table):
        log(table.groupby("rule")["seconds"].agg(["count", "sum", "mean", "max"]).to_string())
    return table
