"""Snakemake's per-job benchmark records, as one table (no torch: runs in the analysis env).

The training, scoring and attack rules carry ``benchmark:`` directives; Snakemake writes one
TSV per job under ``results/benchmarks/`` (wall seconds ``s``, ``max_rss`` MB, I/O,
``mean_load``, ``cpu_time``, one row per repeat). :func:`benchmark_table` reads them all and
names each row's rule and wildcards from its path (:func:`lottery_mia.layout.describe_record`);
the summarize_benchmarks job writes the table as ``results/summary/benchmarks.csv``.

A job forked by the warm worker (:mod:`lottery_mia.jobs.warm`) is timed right by its record,
but the record's ``max_rss`` and ``cpu_time`` are those of the job's own process, which only
waits; the worker appends the fork's to the job's log. Given the logs folder, the table
takes them from there (``forked`` True).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from .layout import describe_record

__all__ = ["benchmark_table", "benchmark_overview"]

KEYS = ["rule", "dataset", "arch", "run", "method", "sparsity", "imp_round", "n", "path",
        "repeat"]


FORK_USAGE = re.compile(r"# warm worker: the job's peak RSS ([0-9.]+) MB.*?CPU time "
                        r"([0-9.]+) s")


def fork_usage(log_path) -> tuple[float, float] | None:
    """(peak RSS in MB, CPU seconds) of a job forked by the warm worker, from the last such
    line of its log; None for a job that ran in its own process."""
    try:
        found = FORK_USAGE.findall(Path(log_path).read_text(errors="replace"))
    except OSError:
        return None
    return (float(found[-1][0]), float(found[-1][1])) if found else None


def benchmark_table(path, logs=None) -> pd.DataFrame:
    """Every benchmark TSV under ``path`` (a directory, or one file) as one DataFrame: the
    rule, dataset, arch, sparsity and n of its job, its path, the repeat index, and
    Snakemake's columns (``s`` renamed ``seconds``). Sorted by rule and wildcards. With
    ``logs`` (the folder whose tree mirrors ``path`` with ``.log`` files), a job forked by
    the warm worker gets its fork's ``max_rss`` and ``cpu_time`` (``forked`` True)."""
    root = Path(path)
    files = [root] if root.is_file() else sorted(root.rglob("*.tsv"))
    frames = []
    for f in files:
        df = pd.read_csv(f, sep="\t")
        if df.empty:
            continue
        rel = f.relative_to(root) if f != root else Path(f.name)
        desc = describe_record(rel.as_posix())
        usage = fork_usage(Path(logs) / rel.with_suffix(".log")) if logs else None
        if usage is not None:
            df["max_rss"], df["cpu_time"] = usage
        df["forked"] = usage is not None
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
