"""Time building the DAG of a config (default: the paper's full grid) and print job counts.

    .venv/bin/python benchmarks/dag_build.py [--configfile config/paper.yaml] [--repeat 3]

Target: the paper grid's DAG builds in at most 5 seconds on a 2-core machine, without the
datasets present. Runs `snakemake -n` in a scratch directory, so no results are touched.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configfile", default=str(ROOT / "config" / "paper.yaml"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    snakemake = Path(sys.executable).with_name("snakemake")
    times, out = [], ""
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(args.configfile, Path(tmp) / "config.yaml")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            proc = subprocess.run(
                [str(snakemake), "-n", "--cores", "all", "--resources", "gpu=4",
                 "-s", str(ROOT / "Snakefile"), "-d", tmp, "--configfile",
                 str(Path(tmp) / "config.yaml")], capture_output=True, text=True)
            times.append(time.perf_counter() - t0)
            if proc.returncode:
                print(proc.stdout[-3000:], proc.stderr[-3000:])
                return proc.returncode
            out = proc.stdout + proc.stderr
    table = out[out.index("Job stats"):].split("\n\n")[0]
    print(f"config: {args.configfile}")
    print(f"dry run (snakemake -n, whole process): median {statistics.median(times):.2f} s, "
          f"min {min(times):.2f} s, max {max(times):.2f} s over {len(times)} runs")
    print(re.sub(r"\n(Reasons|This was).*", "", table, flags=re.S))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
