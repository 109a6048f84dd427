"""Every GPU check of the project in one run: at most 9 minutes (``--budget`` 540 s), or every
GPU code path at small sizes with ``--smoke`` in at most 4 minutes (240 s).

    python benchmarks/gpu_suite.py                 # every check; the last line is JSON
    python benchmarks/gpu_suite.py --smoke         # small sizes, the same code paths
    python benchmarks/gpu_suite.py --dry-run       # list the checks: no torch, no GPU
    python benchmarks/gpu_suite.py --only learns cuda_resume
    python benchmarks/gpu_suite.py --smoke --device cpu --limit-scale 4   # CPU paths, tiny

Any Python with torch works (a bare GPU machine's, or .venv/bin/python). A GPU machine may
hold torch, torchvision, numpy, pandas, pyarrow, scikit-learn and matplotlib and nothing
else; what the checks import beyond those (``REQUIREMENTS`` of tests/gpu/gpu_checks.py:
pydantic, safetensors, PyYAML, pytest) is tried first, and what does not import is installed
from ``gpu-wheels/`` (filled beforehand, on a machine with PyPI, by
benchmarks/prepare_gpu_wheels.py: CPython 3.10-3.13 wheels) into ``.gpu-site/`` with
``pip install --no-index``, which goes first on sys.path and on the checks' PYTHONPATH. No
wheels there: the suite stops at once with one line saying to run prepare_gpu_wheels.py.

The checks are the functions of tests/gpu/gpu_checks.py (pytest runs them too:
tests/gpu/test_gpu_checks.py, skipped without a GPU). Each runs in a process group (a
session) of its own, so a CUDA error cannot poison the next, and at its time limit the whole
group is killed (SIGKILL: DDP ranks, slot jobs and loader workers included) and the suite
waits until it is gone before the next check starts: nothing it started keeps the GPU. Each
check has a full and a smoke limit (gpu_checks.CHECKS); their sums fit the budgets less
:data:`RESERVE_S` for the suite's own start. A check is only started when the budget left
holds its whole limit.

The last line printed is ONE JSON document: per check its ``status`` (``pass``; ``fail``: an
AssertionError; ``error``: another exception or no result; ``timeout``: killed at its limit;
``skipped``: not started, the budget left was below its limit; ``not_applicable``: it raised
``Skip``, e.g. ``ddp`` with one GPU), its numbers and seconds; ``passed`` is true only when
every check passed or did not apply, and at least one passed: a check skipped for lack of
time fails the suite, so a run cut short never passes. The checks (in running order):

- ``learns``: the project's dense training job (``train_dense``) of ResNet18 width 16 on
  the bundled digits must reach test accuracy >= 0.9 on the device;
- ``graph_vs_eager``: the training step captured as a CUDA graph and replayed equals the
  same step body run op by op (float32, TF32 off, deterministic cuDNN: within 1e-6 of the
  weights' scale; bf16 within 1e-2), and its distance from the project's eager step (fused
  SGD) is reported;
- ``sync_free``: the batch producer (an epoch plan drawn on the GPU) and the training step
  (eager and graphed) run under ``torch.cuda.set_sync_debug_mode("error")``; then the CUDA
  tests of tests/test_runtime.py, which must all run and pass;
- ``scoring_precision``: scoring's float32 logits (TF32 off) against a float64 reference of
  the same network and images: max |difference| / RMS of the logits <= 1e-4;
- ``decode_matches_cpu``: the same synthetic JPEGs through ``FolderImageSet``'s GPU path
  (nvJPEG, float resizes on the device) and its CPU path (libjpeg-turbo, uint8 resizes):
  decoded images and training/evaluation views within a few levels of 255;
- ``cuda_resume``: the dense job SIGKILLed after its first epoch and rerun resumes (it logs
  so) to the uninterrupted run's weights (CPU: bit for bit; CUDA: within 5% of the distance
  training moved them);
- ``ddp_one_gpu``: one rank of DistributedDataParallel (NCCL) equals the plain run;
- ``dense_and_ticket``: a dense ResNet18 and its 80% ticket on the claimed GPU: bf16
  autocast on channels_last, pruned weights exactly zero after retraining;
- ``train_throughput``: CIFAR ResNet18 (width 64) images/s of ``run_training`` at batch 128
  and 512 and the ratio to a bare loop (benchmarks/train_throughput.py); target 30k img/s
  at batch 128;
- ``gpu_slots``: 2 and then 3 training jobs sharing one GPU through ``gpu_slots``, timed
  over the same window: aggregate images/s at batch 128 (target 40k);
- ``imagenet_data_path``: synthetic ImageNet-sized JPEGs decoded on the GPU feeding ResNet50
  at batch 256, against synthetic images held on the GPU (target ratio 0.9), CPU decode
  beside it;
- ``ddp``: with two or more GPUs, a digits dense run and a ticket on 2 GPUs: ranks
  identical, pruned weights zero, the accuracy of one GPU; not applicable with one GPU.

Every images/s is over training steps only (the first epoch's warm-up and capture and every
evaluation excluded), and a figure implying more than 2,000 TFLOP/s fails its check (an
empty CUDA graph would otherwise show as a very high throughput).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CHECKS_FILE = ROOT / "tests" / "gpu" / "gpu_checks.py"
WHEELS = ROOT / "gpu-wheels"
SITE = ROOT / ".gpu-site"
FULL_BUDGET_S, SMOKE_BUDGET_S = 540.0, 240.0
RESERVE_S = 30.0  # of each budget, for the suite's start: the import probe, installing
# missing modules from gpu-wheels/, torch's first (cold) import in the device probe
KILL_WAIT_S = 30.0  # how long a killed check's processes may take to be gone
FAILING = ("fail", "error", "timeout", "skipped")
for _p in (ROOT / "src", HERE, CHECKS_FILE.parent):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))


# --------------------------------------------------------------------------- the checks
def load_checks(path: str | Path | None = None):
    """The module of the checks: tests/gpu/gpu_checks.py, or another file with the same
    names (``CHECKS`` rows (name, what, limit_s, smoke_limit_s), ``FUNCS``, ``Skip`` and
    optionally ``REQUIREMENTS``; the suite's tests give it fake checks). Importing it must
    not need torch: ``--dry-run`` reads it on machines without."""
    path = Path(path) if path else CHECKS_FILE
    if path == CHECKS_FILE:
        import gpu_checks

        return gpu_checks
    spec = importlib.util.spec_from_file_location(f"suite_checks_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def limit_of(row, smoke: bool, scale: float = 1.0) -> float:
    """A check's time limit (s): its smoke limit under ``--smoke``, times ``scale``."""
    return (row[3] if smoke else row[2]) * scale


def run_one(checks, name: str, device: str, smoke: bool, result_path: str) -> int:
    """Run one check in this process (the suite's child, a process group of its own) and
    write its result to ``result_path`` as JSON."""
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    t0 = time.time()
    try:
        res = {"status": "pass", **(checks.FUNCS[name](device, smoke) or {})}
    except checks.Skip as why:
        res = {"status": "not_applicable", "reason": str(why)}
    except AssertionError as err:
        res = {"status": "fail", "reason": str(err)[:3000]}
    except Exception as err:  # noqa: BLE001 - every other failure is an error, not a pass
        import traceback

        res = {"status": "error", "reason": f"{type(err).__name__}: {err}"[:1500],
               "traceback": traceback.format_exc()[-3000:]}
    res["seconds"] = round(time.time() - t0, 1)
    Path(result_path).write_text(json.dumps(res, default=_jsonable))
    return 0


def _jsonable(v):
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    try:
        return float(v)
    except (TypeError, ValueError):
        return str(v)


# --------------------------------------------------------------------------- modules
PROBE = """
import json, sys
missing = []
for dist, statement in json.loads(sys.argv[1]):
    try:
        exec(statement, {})
    except Exception as err:
        missing.append([dist, f"{type(err).__name__}: {err}"[:200]])
print(json.dumps(missing))
"""


def with_path(env: dict, *folders) -> dict:
    """``env`` with ``folders`` put first on its PYTHONPATH."""
    parts = [str(f) for f in folders] + [p for p in env.get("PYTHONPATH", "").split(
        os.pathsep) if p and p not in {str(f) for f in folders}]
    return {**env, "PYTHONPATH": os.pathsep.join(parts)}


def missing_modules(requirements, env: dict, python: str = sys.executable) -> list:
    """[distribution, why] of each requirement whose probe statement fails in a fresh
    interpreter with ``env`` (one process for all: the check is what a check's process
    will see)."""
    try:
        proc = subprocess.run([python, "-c", PROBE, json.dumps([list(r) for r in requirements])],
                              capture_output=True, text=True, env=env, timeout=120)
    except subprocess.TimeoutExpired:
        return [[d, "the import probe did not finish in 120s"] for d, _ in requirements]
    if proc.returncode != 0:
        return [[d, f"the probe failed: {proc.stderr.strip()[-200:]}"] for d, _ in requirements]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def wheel_fits(name: str, version=sys.version_info[:2]) -> bool:
    """Whether wheel file ``name`` installs on this CPython (``version``) on Linux x86_64:
    its tags read from the file name (PEP 427), without ``packaging``."""
    import platform

    parts = name[:-len(".whl")].split("-")
    if len(parts) < 5:
        return False
    pys, abis, plats = (set(t.split(".")) for t in parts[-3:])
    cp = f"cp{version[0]}{version[1]}"
    if not plats & {"any"} and not (platform.machine() == "x86_64" and any(
            p.startswith("manylinux") and p.endswith("x86_64") for p in plats)):
        return False
    if "none" in abis and pys & {"py3", f"py{version[0]}{version[1]}", cp}:
        return True
    if cp in pys and cp in abis:
        return True
    return "abi3" in abis and any(p.startswith("cp3") and p[2:].isdigit()
                                  and int(p[3:]) <= version[1] for p in pys)


def unpack_wheels(wheels: Path, site: Path) -> list[str]:
    """Install every wheel in ``wheels`` that fits this interpreter into ``site`` by
    unpacking it (what ``pip install --target`` does for these pure and platlib wheels;
    for a Python without pip). The folder holds exactly the closure prepare_gpu_wheels.py
    fetched, so nothing else is needed. Returns the distributions unpacked."""
    import zipfile

    done = []
    for wheel in sorted(Path(wheels).glob("*.whl")):
        dist = wheel.name.split("-")[0]
        if dist in done or not wheel_fits(wheel.name):
            continue
        with zipfile.ZipFile(wheel) as z:
            for member in z.namelist():
                parts = member.split("/")
                if parts[0].endswith(".data"):
                    if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                        continue  # scripts and headers are not needed to import
                    parts = parts[2:]
                target = Path(site, *parts)
                if member.endswith("/"):
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(z.read(member))
        done.append(dist)
    return done


def _has_pip(python: str) -> bool:
    return subprocess.run([python, "-m", "pip", "--version"], capture_output=True,
                          timeout=60).returncode == 0


def ensure_modules(requirements, *, wheels: Path = WHEELS, site: Path = SITE,
                   env: dict | None = None, python: str = sys.executable,
                   use_pip: bool | None = None) -> tuple[dict, list, str | None]:
    """Make ``requirements`` ((distribution, probe statement) pairs) importable for the
    checks: (the checks' environment, the distributions installed now, None) or (..., an
    error line). ``site`` goes first on the checks' PYTHONPATH when it exists (``main``
    puts it on this process's sys.path too); what does not import is installed there from
    the wheels in ``wheels``,
    offline (``pip install --no-index --find-links``, dependencies included; without pip,
    ``use_pip`` False, by unpacking the wheels that fit)."""
    env = dict(os.environ if env is None else env)
    site = Path(site)
    env = with_path(env, ROOT / "src")
    if site.is_dir():
        env = with_path(env, site)
    missing = missing_modules(requirements, env, python)
    if not missing:
        return env, [], None
    names = [d for d, _ in missing]
    what = ", ".join(f"{d} ({why})" for d, why in missing)
    wheels = Path(wheels)
    if not wheels.is_dir() or not any(wheels.glob("*.whl")):
        return env, [], (f"{', '.join(names)} do not import here ({what}) and {wheels} holds "
                         "no wheels: run `python benchmarks/prepare_gpu_wheels.py` on a "
                         "machine with PyPI first (it fills gpu-wheels/ with CPython "
                         "3.10-3.13 wheels), then bring gpu-wheels/ here and rerun")
    site.mkdir(parents=True, exist_ok=True)
    if use_pip is None:
        use_pip = _has_pip(python)
    if use_pip:
        cmd = [python, "-m", "pip", "install", "--no-index", "--find-links", str(wheels),
               "--target", str(site), "--upgrade", "--disable-pip-version-check",
               "--no-warn-script-location", "--quiet", *names]
        pip_env = {k: v for k, v in env.items() if not k.startswith("PIP_")}  # these wheels
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=pip_env)
        if proc.returncode != 0:
            last = [ln for ln in (proc.stderr + proc.stdout).splitlines()
                    if ln.startswith("ERROR")][-1:] or proc.stderr.strip().splitlines()[-1:]
            return env, [], (f"pip could not install {', '.join(names)} from {wheels} for "
                             f"Python {sys.version.split()[0]} ({(last or ['?'])[0][:300]}); "
                             "rerun benchmarks/prepare_gpu_wheels.py (CPython 3.10-3.13)")
    else:
        unpack_wheels(wheels, site)
    env = with_path(env, site)
    still = missing_modules(requirements, env, python)
    if still:
        return env, names, (f"installed {', '.join(names)} into {site}, but "
                            f"{', '.join(f'{d} ({why})' for d, why in still)} still do not "
                            "import")
    return env, names, None


# --------------------------------------------------------------------------- processes
def group_members(pgid: int) -> list[int]:
    """Live processes (zombies aside) of process group ``pgid`` or of the session it leads
    (a check's child that made a group of its own is still in the session)."""
    members = []
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: the group alone, zombies counted
        try:
            os.killpg(pgid, 0)
            return [pgid]
        except (ProcessLookupError, PermissionError):
            return []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        state, pgrp, session = fields[0], int(fields[2]), int(fields[3])
        if state not in ("Z", "X") and pgid in (pgrp, session):
            members.append(int(entry.name))
    return members


def kill_group(pgid: int, wait_s: float = KILL_WAIT_S) -> tuple[int, list[int]]:
    """SIGKILL every process of ``pgid``'s group and session, then wait until none is
    left: (how many were alive, those still alive after ``wait_s``)."""
    alive = group_members(pgid)
    if not alive:
        return 0, []
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    deadline = time.time() + wait_s
    while True:
        left = group_members(pgid)
        for pid in left:  # members of the session outside the group
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not left or time.time() > deadline:
            return len(alive), left
        time.sleep(0.05)


def run_isolated(cmd: list, timeout: float, env: dict, log_path: Path) -> dict:
    """Run ``cmd`` in a new session (its own process group), its output to ``log_path``
    (a file: an orphan holding a pipe cannot block the suite). At ``timeout`` the whole
    group is killed; after the command ends, so is anything it left behind. Returns the
    exit code (None when killed), whether it timed out, how many processes of its group
    were killed after it ended, and those that outlived SIGKILL."""
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, cwd=str(ROOT),
                                start_new_session=True)
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:  # also on KeyboardInterrupt: the group never outlives the suite
        killed, survivors = kill_group(proc.pid)
        proc.wait()
    return {"returncode": None if timed_out else proc.returncode, "timed_out": timed_out,
            "killed": killed, "survivors": survivors}


def _tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_bytes()[-n:].decode(errors="replace")
    except OSError:
        return ""


# --------------------------------------------------------------------------- the suite
def run_checks(rows, *, device: str, smoke: bool, budget: float, env: dict,
               t_start: float, checks_file: str | None = None, scale: float = 1.0,
               say=print) -> dict:
    """Each check of ``rows`` in a process group of its own, in order, within ``budget``
    seconds counted from ``t_start``, each within its limit times ``scale``: name ->
    result."""
    results = {}
    for row in rows:
        name, what, limit = row[0], row[1], limit_of(row, smoke, scale)
        left = budget - (time.time() - t_start)
        if left < limit:
            results[name] = {"status": "skipped",
                             "reason": f"time budget: {left:.0f}s of {budget:.0f}s left, the "
                                       f"check may take {limit:.0f}s"}
            say(f"[{time.time() - t_start:5.0f}s] {name}: skipped (time budget)")
            continue
        say(f"[{time.time() - t_start:5.0f}s] {name}: {what} (<= {limit:.0f}s)")
        with tempfile.TemporaryDirectory(prefix="lottery-mia-suite-") as tmp:
            result, log = Path(tmp) / "result.json", Path(tmp) / "output.log"
            cmd = [sys.executable, str(Path(__file__).resolve()), "--run-one", name,
                   str(result), "--device", device]
            cmd += ["--smoke"] if smoke else []
            cmd += ["--checks-module", str(checks_file)] if checks_file else []
            t0 = time.time()
            ran = run_isolated(cmd, limit, {**env, "GPU_SUITE_DEADLINE": str(t0 + limit)},
                               log)
            seconds = round(time.time() - t0, 1)
            if ran["timed_out"]:
                res = {"status": "timeout", "reason": f"killed (with its process group) at "
                                                      f"its limit of {limit:.0f}s",
                       "output": _tail(log)}
            elif result.exists():
                res = json.loads(result.read_text())
            else:
                res = {"status": "error", "reason": f"no result (exit {ran['returncode']})",
                       "output": _tail(log)}
            if res["status"] in FAILING and "output" not in res:
                res["output"] = _tail(log)
        res["wall_seconds"], res["limit_s"] = seconds, limit
        if ran["killed"] and not ran["timed_out"]:
            res["leftover_processes_killed"] = ran["killed"]
        if ran["survivors"]:
            res["status"] = "error"
            res["reason"] = (f"processes {ran['survivors']} outlived SIGKILL for "
                             f"{KILL_WAIT_S:.0f}s; " + res.get("reason", ""))
        results[name] = res
        say(f"        {res['status']} ({seconds}s)"
            + (f": {str(res.get('reason', ''))[:300]}" if res["status"] != "pass" else ""))
    return results


def summarize(results: dict) -> dict:
    """The verdict over the checks' results: ``passed`` only when every check passed or
    did not apply and at least one passed (a budget skip, a failure, an error or a timeout
    fails the suite), with the names per status."""
    by = {}
    for name, res in results.items():
        by.setdefault(res["status"], []).append(name)
    passed = bool(by.get("pass")) and not any(by.get(s) for s in FAILING)
    return {"passed": passed, "statuses": by, "not_applicable": by.get("not_applicable", []),
            "skipped": by.get("skipped", [])}


PROBE_DEVICE = """
import json, sys, torch
cuda = torch.cuda.is_available()
print(json.dumps({"torch": torch.__version__, "python": sys.version.split()[0],
                  "cuda_available": cuda, "gpu": torch.cuda.get_device_name() if cuda else None,
                  "gpus_visible": torch.cuda.device_count() if cuda else 0}))
"""


def probe_device(env: dict) -> dict:
    """torch's version and the GPUs, from a child process (this one never initialises
    CUDA, so it holds no GPU memory while the checks run)."""
    try:
        proc = subprocess.run([sys.executable, "-c", PROBE_DEVICE], capture_output=True,
                              text=True, env=env, timeout=180)
    except subprocess.TimeoutExpired:
        return {"error": "the device probe (import torch, CUDA's start) did not finish in "
                         "180s"}
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip() or "?").splitlines()[-1]
        return {"error": f"the device probe (import torch) failed: {last[:300]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def dry_run(rows, budget: float, smoke: bool) -> int:
    """The checks and their limits, and one JSON line; imports nothing of the project."""
    for name, what, limit, smoke_limit in rows:
        print(f"{name:20s} <= {limit:3d}s  smoke <= {smoke_limit:3d}s  {what}")
    print(json.dumps({"dry_run": True, "smoke": smoke, "budget_s": budget,
                      "full_budget_s": FULL_BUDGET_S, "smoke_budget_s": SMOKE_BUDGET_S,
                      "reserve_s": RESERVE_S,
                      "limits_sum_s": sum(r[2] for r in rows),
                      "smoke_limits_sum_s": sum(r[3] for r in rows),
                      "checks": [{"name": n, "what": w, "limit_s": s, "smoke_limit_s": m}
                                 for n, w, s, m in rows]}))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="list the checks and exit")
    ap.add_argument("--only", nargs="+", default=None, metavar="CHECK")
    ap.add_argument("--budget", type=float, default=None,
                    help=f"seconds for the whole suite ({FULL_BUDGET_S:.0f}; --smoke "
                         f"{SMOKE_BUDGET_S:.0f})")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--smoke", action="store_true",
                    help="small sizes through every code path (also e.g. with --device cpu)")
    ap.add_argument("--limit-scale", type=float, default=1.0,
                    help="multiply every limit and the default budget (the limits are set "
                         "for one H100/H200; e.g. 4 for a smoke run on a small CPU)")
    ap.add_argument("--wheels", default=str(WHEELS), help="wheels of the missing modules")
    ap.add_argument("--site", default=str(SITE), help="where they are installed")
    ap.add_argument("--checks-module", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--run-one", nargs=2, metavar=("CHECK", "RESULT_JSON"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    budget = args.budget or (SMOKE_BUDGET_S if args.smoke else FULL_BUDGET_S) * args.limit_scale
    if args.run_one:
        if Path(args.site).is_dir():
            sys.path.insert(0, str(Path(args.site)))
        return run_one(load_checks(args.checks_module), args.run_one[0], args.device,
                       args.smoke, args.run_one[1])
    checks = load_checks(args.checks_module)
    names = [r[0] for r in checks.CHECKS]
    unknown = sorted(set(args.only or ()) - set(names))
    if unknown:
        ap.error(f"unknown checks {unknown}; the checks are {names}")
    rows = [r for r in checks.CHECKS if args.only is None or r[0] in args.only]
    if args.dry_run:
        return dry_run(rows, budget, args.smoke)
    t_start = time.time()
    env, installed, error = ensure_modules(getattr(checks, "REQUIREMENTS", []),
                                           wheels=Path(args.wheels), site=Path(args.site))
    if error:
        print(json.dumps({"passed": False, "error": error}))
        return 2
    if Path(args.site).is_dir():
        sys.path.insert(0, str(Path(args.site)))
    doc = {"suite": "gpu_suite", **probe_device(env), "device": args.device,
           "smoke": args.smoke, "budget_s": budget,
           "limit_scale": args.limit_scale,
           "limits_sum_s": sum(limit_of(r, args.smoke, args.limit_scale) for r in rows),
           "installed_from_wheels": installed}
    if "error" in doc or (args.device.startswith("cuda") and not doc["cuda_available"]):
        print(json.dumps({**doc, "passed": False,
                          "error": doc.get("error") or "no CUDA device (use --dry-run, or "
                                                       "--smoke --device cpu)"}))
        return 2
    if args.device == "cpu" and "OMP_NUM_THREADS" not in env:
        # a CPU run checks code paths, not speed: one thread per process keeps a check's
        # processes (ranks, slot jobs) from spin-waiting on each other and on other load
        env["OMP_NUM_THREADS"] = "1"
    checks_file = str(Path(args.checks_module).resolve()) if args.checks_module else None
    results = run_checks(rows, device=args.device, smoke=args.smoke, budget=budget, env=env,
                         t_start=t_start, checks_file=checks_file, scale=args.limit_scale)
    doc.update(summarize(results))
    doc["seconds"] = round(time.time() - t_start, 1)
    doc["checks"] = results
    print(json.dumps(doc, default=_jsonable))
    return 0 if doc["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
