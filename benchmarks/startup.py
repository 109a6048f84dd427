"""Start-up against work: what each kind of job of the default run spends before it computes.

    .venv/bin/python benchmarks/startup.py [--repeat 3] [--keep DIR]

For each kind of job (train, ticket, score, attack, prune, split, summarize, figure) the
script runs one real job of that kind in a fresh interpreter, on the default config's data
(digits, the default recipe), and records:

- ``job_s``: the wall time of the whole process (interpreter start, imports, work);
- ``fixed_s``: the wall time of a fresh interpreter that imports exactly the modules the
  job ended with, in the same order, and exits: the job's fixed cost (start-up);
- ``work_s``: ``job_s - fixed_s``.

Each figure is the median of ``--repeat`` runs. With the default run's job counts (from a
``snakemake -n`` dry run of ``config/config.yaml``) it prints the share of the default run's
job time that is start-up, and a last-line JSON: ``startup_share``,
``per_torch_job_fixed_s`` (the median fixed cost of the jobs that import torch),
``bare_torch_import_s`` (``python -c "import torch"`` on the same machine) and
``ratio_fixed_vs_bare_torch`` (machines differ: the ratio travels better than seconds).

Both ways a job can start are measured:

- ``own process``: a fresh interpreter imports what the job needs, as every job of a
  cluster executor does (and a local run with ``LOTTERY_MIA_WARM=0``);
- ``warm worker``: the job hands itself to the warm worker (:mod:`lottery_mia.jobs.warm`),
  which a local run starts, and runs in a fork of a process that has imported torch,
  pandas and the package; its fixed cost is the same hand-over with only the job's imports.

The last line's figures are those of the default run, which is local (warm worker); the
own-process figures are under ``own_process``.

Snakemake's own per-job cost (its ``script:`` preamble, about the same for every job, about
0.15 s) is not included in either.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from lottery_mia.jobs import warm  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}

SETUP = """
from lottery_mia.jobs.split import build_membership_split
build_membership_split("digits", None, key="k", download=False, members=250, nonmembers=None,
                       scored_members=None, seed=0, output="membership.parquet")
"""

# One job of each kind, as its script calls it, with the default config's resnet18 recipe.
RECIPE = ("dict(width=16, epochs=60, batch_size=64, lr=0.05, weight_decay=0.0, eval_every=10, "
          "num_workers=0)")
JOBS = {
    "split": '''
from lottery_mia.jobs.split import build_attack_sample
build_attack_sample(membership_path="membership.parquet", n=500, seed=0, test_fraction=0.5,
                    output="sample.parquet")
''',
    "train": '''
from lottery_mia.data import DataSpec
from lottery_mia.jobs.train import train_dense
train_dense(data=DataSpec("digits", "digits", None, "membership.parquet"), arch="resnet18",
            recipe=RECIPE, seed=0,
            rewind_epoch=0, device="cpu", out_model="model.pt", out_init="init.pt",
            out_rewind="rewind.pt", out_metrics="metrics.json", threads=1)
''',
    "prune": '''
from lottery_mia.jobs.prune import prune_mask
prune_mask(method="oneshot", settings=None, score_model="model.pt", out_mask="mask.pt",
           out_report="mask.json", sparsity=0.8)
''',
    "ticket": '''
from lottery_mia.data import DataSpec
from lottery_mia.jobs.train import train_ticket
train_ticket(data=DataSpec("digits", "digits", None, "membership.parquet"), arch="resnet18",
             recipe=RECIPE, seed=0,
             sparsity=0.8, device="cpu", mask_path="mask.pt", start_path="rewind.pt",
             rewind_epoch=0, out_model="ticket.pt", out_metrics="ticket.json", threads=1)
''',
    "score": '''
from lottery_mia.data import DataSpec
from lottery_mia.jobs.score import extract_confidences
extract_confidences(data=DataSpec("digits", "digits", None, "membership.parquet"),
                    model_path="model.pt", dataset="digits", arch="resnet18", sparsity=0.0,
                    device="cpu", batch_size=1000, output="confidences.parquet", replicate=0,
                    threads=1, num_workers=0, method="dense")
''',
    "attack": '''
from lottery_mia.jobs.attack import run_attacks_per_sample
run_attacks_per_sample(confidences_path="confidences.parquet", sample_paths=["sample.parquet"],
                       sample_sizes=[500], out_metrics=["attack.json"],
                       out_scores=["scores.parquet"], attacks=["mlp", "loss", "confidence"],
                       settings={"mlp": {"max_iter": 200}}, features="softmax", seed=0,
                       n_bootstrap=200, replicate=0)
''',
    "summarize": '''
from lottery_mia.jobs.summarize import summarize_attacks
summarize_attacks(["attack.json"], ["scores.parquet"], "attacks.csv", n_bootstrap=200)
''',
    "figure": '''
from lottery_mia.jobs.figure import draw_figure
draw_figure("figure3", tables={"attacks": "attacks.csv"}, scores=[], models=[],
            params={"attack": "mlp", "figure3_sparsity": 0.0, "method": "oneshot"},
            output="figure.png")
''',
}
# which rule of the default run each kind stands for (job counts from the dry run)
RULES = {
    "split": ["membership_split", "reference_split", "attack_sample", "check_data"],
    "train": ["train_dense", "train_reference"],
    "prune": ["prune_mask"],
    "ticket": ["train_ticket"],
    "score": ["extract_confidences"],
    "attack": ["fit_attack", "transfer_attack"],
    "summarize": ["summarize_training", "summarize_attacks", "summarize_transfer",
                  "summarize_benchmarks", "gap_correlation", "tables", "slices"],
    "figure": ["figure", "report"],
}

MODULES_OUT = '''
import json, sys
json.dump([m for m in sys.modules if not m.startswith("__")], open("{out}", "w"))
'''


# what every workflow script does first (workflow/scripts/_checkout.py)
HAND_OVER = f"""
from lottery_mia.jobs.warm import delegate
delegate({str(ROOT / "src")!r})
"""


def timed(code: str, cwd: Path, socket_path: str | None = None) -> float:
    """Wall time of a fresh interpreter running ``code``, in its own process or (with
    ``socket_path``) handed to the warm worker there, as a workflow script is."""
    env = {**ENV, warm.ENV: socket_path or "0"}
    script = cwd / "job_script.py"
    script.write_text(HAND_OVER + code)
    t0 = time.perf_counter()
    proc = subprocess.run([PY, script.name], cwd=cwd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"failed:\n{code}\n{proc.stderr[-3000:]}")
    return took


def imports_only(modules: list[str]) -> str:
    """Code that imports ``modules`` in order (the job's own import sequence) and exits."""
    names = [m for m in modules if m.isidentifier() or all(p.isidentifier()
                                                            for p in m.split("."))]
    return ("import importlib\nfor m in %r:\n    try:\n        importlib.import_module(m)\n"
            "    except Exception:\n        pass\n" % names)


def job_counts() -> dict[str, int]:
    snakemake = Path(PY).with_name("snakemake")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config.yaml").write_text((ROOT / "config" / "config.yaml").read_text())
        proc = subprocess.run([str(snakemake), "-n", "--cores", "2", "-s",
                               str(ROOT / "Snakefile"), "-d", tmp, "--configfile",
                               str(Path(tmp) / "config.yaml")], capture_output=True,
                              text=True, env=ENV)
    counts, inside = {}, False
    for line in proc.stdout.splitlines():
        parts = line.split()
        if line.startswith("Job stats"):
            inside = True
        elif inside and len(parts) == 2 and parts[1].isdigit():
            if parts[0] == "total":
                break
            counts[parts[0]] = int(parts[1])
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", help="work in this folder and keep it")
    args = ap.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="startup-"))
    work.mkdir(parents=True, exist_ok=True)
    timed(SETUP, work)
    counts = job_counts()
    bare = statistics.median(timed("import torch", work) for _ in range(args.repeat))
    empty = statistics.median(timed("pass", work) for _ in range(args.repeat))
    own = measure(work, args.repeat, None)
    server = warm.start(str(ROOT / "src"), str(work / "warm_worker.log"))
    try:
        deadline = time.monotonic() + 120
        while not os.path.exists(server.socket_path) and time.monotonic() < deadline:
            time.sleep(0.1)
        hot = measure(work, args.repeat, server.socket_path)
    finally:
        server.stop()
    figures = {}
    for name, rows in (("own process", own), ("warm worker", hot)):
        print(f"\n{name}:")
        figures[name] = table(rows, counts)
    print(f"\npython start alone: {empty:.2f} s; python -c 'import torch': {bare:.2f} s "
          f"(both with the workflow scripts' hand-over check, which finds no worker)")
    for name, f in figures.items():
        print(f"default run, {name}: {sum(counts.values())} jobs; start-up {f['fixed']:.0f} s "
              f"of {f['total']:.0f} s job time ({f['fixed'] / f['total']:.0%}; one job of "
              "each kind, as the default recipe)")

    def summary(f):
        return {"startup_share": round(f["fixed"] / f["total"], 3),
                "per_torch_job_fixed_s": round(f["torch_fixed"], 2),
                "ratio_fixed_vs_bare_torch": round(f["torch_fixed"] / bare, 2)}

    hot_f, own_f = figures["warm worker"], figures["own process"]
    print(json.dumps({**summary(hot_f), "bare_torch_import_s": round(bare, 2),
                      "python_start_s": round(empty, 2),
                      "own_process": summary(own_f),
                      "imports_torchvision_models": sorted(
                          k for k, r in own.items() if r["torchvision_models"]),
                      "imports_torch_dynamo": sorted(k for k, r in own.items()
                                                     if r["torch_dynamo"])}))
    return 0


def measure(work: Path, repeat: int, socket_path: str | None) -> dict:
    """Per kind of job: its wall time, its fixed cost (its import set alone) and the rest."""
    rows = {}
    for kind, code in JOBS.items():
        code = code.replace("recipe=RECIPE", f"recipe={RECIPE}")
        out = work / f"modules-{kind}.json"
        jobs, fixed = [], []
        for _ in range(repeat):
            jobs.append(timed(code + MODULES_OUT.format(out=out), work, socket_path))
        modules = json.loads(out.read_text())
        for _ in range(repeat):
            fixed.append(timed(imports_only(modules), work, socket_path))
        j, f = statistics.median(jobs), statistics.median(fixed)
        rows[kind] = {"job_s": j, "fixed_s": min(f, j), "work_s": max(j - f, 0.0),
                      "torch": "torch" in modules,
                      "torchvision_models": "torchvision.models" in modules,
                      "torch_dynamo": "torch._dynamo" in modules}
    return rows


def table(rows: dict, counts: dict) -> dict:
    print(f"{'job':10} {'jobs':>5} {'job s':>7} {'fixed s':>8} {'work s':>7}  torch  "
          "tv.models  dynamo")
    total = fixed_total = 0.0
    for kind, r in rows.items():
        n = sum(counts.get(rule, 0) for rule in RULES[kind])
        total += n * r["job_s"]
        fixed_total += n * r["fixed_s"]
        print(f"{kind:10} {n:5d} {r['job_s']:7.2f} {r['fixed_s']:8.2f} {r['work_s']:7.2f}  "
              f"{'yes' if r['torch'] else 'no':5}  {'yes' if r['torchvision_models'] else 'no':9}"
              f"  {'yes' if r['torch_dynamo'] else 'no'}")
    torch_fixed = statistics.median(r["fixed_s"] for r in rows.values() if r["torch"])
    return {"total": total, "fixed": fixed_total, "torch_fixed": torch_fixed}


if __name__ == "__main__":
    sys.exit(main())
