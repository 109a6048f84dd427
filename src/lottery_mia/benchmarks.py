"""Snakemake's per-job benchmark records, as one table (no torch: runs in the analysis env).

The training, scoring and attack rules carry ``benchmark:`` directives; Snakemake writes one
TSV per job under ``results/benchmarks/`` (wall seconds ``s``, ``max_rss`` MB, I/O,
``mean_load``, ``cpu_time``, one row per repeat). :func:`benchmark_table` reads them all and
names each row's rule and wildcards from its path; :func:`summarize_benchmarks` writes the
table as ``results/summary/benchmarks.csv``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

__all__ = ["benchmark_table", "summarize_benchmarks"]

KEYS = ["rule", "dataset", "arch", "run", "method", "sparsity", "imp_round", "n", "path",
        "repeat"]


def _describe(rel: Path) -> dict:
    """Rule and wildcards of a benchmark file from its path under the benchmark directory:
    {dataset}/{arch}/{run}/{method}/(sparsity-{s}|round-{k})/{rule}[_n{n}].tsv or
    {dataset}/transfer/{run}/n{n}/{arch}_{method}_sparsity-{s}.tsv (records of earlier
    versions, without the method folder, are read too)."""
    parts, stem = rel.parts, rel.stem
    row: dict = {"rule": stem, "dataset": parts[0] if len(parts) > 1 else None,
                 "arch": None, "run": None, "method": None, "sparsity": None,
                 "imp_round": None, "n": None}
    transfer = len(parts) >= 3 and parts[1] == "transfer"
    if transfer:
        row["rule"] = "transfer_attack"
        m = re.fullmatch(r"(.+?)(?:_([a-z_]+))?_sparsity-([0-9.]+)", stem)
        if m:
            row["arch"], row["method"] = m.group(1), m.group(2)
            row["sparsity"] = float(m.group(3))
    elif len(parts) >= 3:
        row["arch"] = parts[1]
    for i, p in enumerate(parts[1:-1], start=1):
        if re.fullmatch(r"(seed|ref)-\d+", p):
            row["run"] = p
            if i + 2 < len(parts) and re.fullmatch(r"(sparsity|round)-[0-9.]+", parts[i + 2]):
                row["method"] = parts[i + 1]
        elif m := re.fullmatch(r"sparsity-([0-9.]+)", p):
            row["sparsity"] = float(m.group(1))
        elif m := re.fullmatch(r"round-(\d+)", p):
            row["imp_round"] = int(m.group(1))
        elif m := re.fullmatch(r"n(\d+)", p):
            row["n"] = int(m.group(1))
    if not transfer and (m := re.fullmatch(r"(.+)_n(\d+)", stem)):
        row["rule"], row["n"] = m.group(1), int(m.group(2))
    return row


def benchmark_table(path) -> pd.DataFrame:
    """Every benchmark TSV under ``path`` (a directory, or one file) as one DataFrame: the
    rule, dataset, arch, sparsity and n of its job, its path, the repeat index, and
    Snakemake's columns (``s`` renamed ``seconds``). Sorted by rule and wildcards."""
    root = Path(path)
    files = [root] if root.is_file() else sorted(root.rglob("*.tsv"))
    frames = []
    for f in files:
        df = pd.read_csv(f, sep="\t")
        if df.empty:
            continue
        desc = _describe(f.relative_to(root) if f != root else Path(f.name))
        df = df.rename(columns={"s": "seconds"})
        df.insert(0, "repeat", range(len(df)))
        for k in reversed(KEYS[:-1]):
            df.insert(0, k, str(f) if k == "path" else desc[k])
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=KEYS + ["seconds"])
    table = pd.concat(frames, ignore_index=True)
    return table.sort_values(["rule", "dataset", "arch", "run", "method", "sparsity",
                              "imp_round", "n", "repeat"],
                             na_position="first", kind="stable").reset_index(drop=True)


def benchmark_overview(table: pd.DataFrame) -> pd.DataFrame:
    """Per rule: jobs, total / median / max wall seconds and the largest max_rss (MB)."""
    if table.empty:
        return pd.DataFrame(columns=["rule", "jobs", "total_seconds", "median_seconds",
                                     "max_seconds", "max_rss_mb"])
    g = table.groupby("rule")
    out = pd.DataFrame({"jobs": g.size(), "total_seconds": g["seconds"].sum(),
                        "median_seconds": g["seconds"].median(),
                        "max_seconds": g["seconds"].max()})
    if "max_rss" in table:
        out["max_rss_mb"] = pd.to_numeric(table["max_rss"], errors="coerce").groupby(
            table["rule"]).max()
    return out.reset_index().sort_values("total_seconds", ascending=False)


def summarize_benchmarks(directory, output) -> pd.DataFrame:
    table = benchmark_table(directory)
    from .io import atomic_path

    with atomic_path(output) as tmp:
        table.to_csv(tmp, index=False)
    print(f"{len(table)} benchmark record(s) from {directory} -> {output}")
    if len(table):
        print(table.groupby("rule")["seconds"].agg(["count", "sum", "mean", "max"]).to_string())
    return table
