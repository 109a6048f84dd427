"""Compare the results of two runs: every CSV, Parquet and JSON table under results/summary
and results/report, value by value.

    .venv/bin/python benchmarks/compare_runs.py RESULTS_A RESULTS_B [--rtol 1e-9]

Use it to check that a change that should change no result changes none (a restructure, a
faster implementation): run ``make report`` before and after, keep both ``results/``
folders, compare. Columns that measure the run rather than its results (``train_seconds``,
``seconds``, every column named ``*_seconds*`` such as an attack's ``attack_seconds``
(and the attack-model table's ``attack_seconds_dense``), the other
benchmark columns, timestamps) are skipped, and so is
``summary/benchmarks.csv`` as a whole. Numbers are compared with a relative tolerance
(default 1e-9: the last bits of a float may differ when an interval is computed by another,
equivalent formula), everything else exactly. Exits 1 and lists the differences when there
are any; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

SKIP_FILES = {"summary/benchmarks.csv"}
SKIP_COLUMNS = {"train_seconds", "seconds", "s", "h:m:s", "max_rss", "max_vms", "max_uss",
                "max_pss", "io_in", "io_out", "mean_load", "cpu_time", "generated"}
FOLDERS = ("summary", "report")


def measures_the_run(column: str) -> bool:
    """A column that times or sizes the run rather than giving a result."""
    return column in SKIP_COLUMNS or "_seconds" in str(column)  # attack_seconds_dense too


def tables(root: Path) -> dict[str, Path]:
    out = {}
    for folder in FOLDERS:
        for p in sorted((root / folder).glob("*")):
            rel = f"{folder}/{p.name}"
            if p.suffix in (".csv", ".parquet", ".json") and rel not in SKIP_FILES:
                out[rel] = p
    return out


def read(path: Path):
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype={"replicate": str})
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return json.loads(path.read_text())


def _same_values(a, b, rtol: float) -> bool:
    try:
        x = np.asarray(a, dtype=float)
        y = np.asarray(b, dtype=float)
    except (TypeError, ValueError):
        return list(map(str, a)) == list(map(str, b))
    return bool(np.allclose(x, y, rtol=rtol, atol=1e-12, equal_nan=True))


def compare_frames(a: pd.DataFrame, b: pd.DataFrame, rtol: float) -> list[str]:
    problems = []
    cols_a = {c for c in a.columns if not measures_the_run(c)}
    cols_b = {c for c in b.columns if not measures_the_run(c)}
    if cols_a != cols_b:
        problems.append(f"columns differ: only in A {sorted(cols_a - cols_b)}, only in B "
                        f"{sorted(cols_b - cols_a)}")
    if len(a) != len(b):
        return problems + [f"{len(a)} rows vs {len(b)}"]
    for c in sorted(cols_a & cols_b):
        va, vb = a[c].to_numpy(), b[c].to_numpy()
        if va.dtype == object and len(va) and isinstance(va[0], np.ndarray):  # list columns
            same = all(_same_values(x, y, rtol) for x, y in zip(va, vb))
        else:
            same = _same_values(va, vb, rtol)
        if not same:
            problems.append(f"column {c!r} differs")
    return problems


def compare_json(a, b, rtol: float, where: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if measures_the_run(k):
                continue
            if k not in a or k not in b:
                out.append(f"{where}{k}: only in one run")
            else:
                out += compare_json(a[k], b[k], rtol, f"{where}{k}.")
        return out
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return [] if _same_values([a], [b], rtol) else [f"{where[:-1]}: {a} vs {b}"]
    return [] if a == b else [f"{where[:-1]}: {a!r} vs {b!r}"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--rtol", type=float, default=1e-9)
    args = ap.parse_args()
    ta, tb = tables(args.a), tables(args.b)
    problems = {}
    for name in sorted(set(ta) | set(tb)):
        if name not in ta or name not in tb:
            problems[name] = ["only in " + ("A" if name in ta else "B")]
            print(f"{name:40s} ONLY IN {'A' if name in ta else 'B'} (a table one run lacks)")
            continue
        a, b = read(ta[name]), read(tb[name])
        p = compare_json(a, b, args.rtol) if isinstance(a, dict) else \
            compare_frames(a, b, args.rtol)
        if p:
            problems[name] = p
        print(f"{name:40s} {'DIFFERENT: ' + '; '.join(p) if p else 'same'}")
    print(json.dumps({"tables": len(set(ta) | set(tb)), "different": len(problems),
                      "rtol": args.rtol}))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
