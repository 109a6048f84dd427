"""Every GPU check of the project in one run (at most about 5 minutes on one H200).

    .venv/bin/python benchmarks/gpu_suite.py              # all checks; the last line is JSON
    .venv/bin/python benchmarks/gpu_suite.py --dry-run    # list the checks (no GPU needed)
    .venv/bin/python benchmarks/gpu_suite.py --only scoring_precision sync_free
    .venv/bin/python benchmarks/gpu_suite.py --smoke --device cpu   # the code paths on a CPU, tiny

The checks themselves are in tests/gpu/gpu_checks.py (pytest runs them too:
tests/gpu/test_gpu_checks.py, skipped without a GPU). Each check runs in a process of its own (a CUDA error in one cannot poison the next) with
a time limit out of the suite's budget (``--budget``, 300 s); one that would not fit is
reported as skipped. The last line printed is ONE JSON document: per check its status
(``pass``, ``fail``, ``skipped``, ``error``), its numbers and seconds, and ``passed`` (no
check failed or errored). The checks:

- ``graph_vs_eager``: the training step captured as a CUDA graph and replayed equals the
  same step body run op by op (float32, TF32 off, deterministic cuDNN: within 1e-6 of the
  weights' scale; bf16 within 1e-2), and its distance from the project's eager step (fused
  SGD) is reported;
- ``sync_free``: the batch producer (an epoch plan drawn on the GPU) and the training step
  (eager and graphed) run under ``torch.cuda.set_sync_debug_mode("error")``; also runs the
  CUDA tests of tests/test_runtime.py when pytest is there;
- ``scoring_precision``: scoring's float32 logits (TF32 off) against a float64 reference of
  the same network and images: max |difference| / RMS of the logits <= 1e-4 (float32
  through a ResNet18 is about 1e-6 to 1e-5; TF32 is about 1e-3, reported beside it);
- ``train_throughput``: CIFAR ResNet18 (width 64) images/s of ``run_training`` at batch 128
  and 512 and the ratio to a bare loop (benchmarks/train_throughput.py); target 30k img/s
  at batch 128;
- ``gpu_slots``: 2 and then 3 training jobs sharing one GPU through ``gpu_slots`` (each
  claims its own slot lock), timed over the same window: aggregate images/s at batch 128
  (target 40k);
- ``imagenet_data_path``: synthetic ImageNet-sized JPEGs decoded on the GPU
  (``FolderImageSet``, ``decode="device"``) feeding ResNet50 training at batch 256, against
  the same training on synthetic images held on the GPU (target ratio 0.9); the CPU-decode
  path (loader workers) is measured beside it;
- ``dense_and_ticket``: a dense ResNet18 and its 80% ticket trained on the claimed GPU: bf16
  autocast on channels_last, pruned weights exactly zero after retraining (the old
  benchmarks/gpu_check.py);
- ``ddp``: with two or more GPUs, a digits dense run and a ticket on 2 GPUs
  (DistributedDataParallel, NCCL): ranks identical, pruned weights zero, the same accuracy
  as one GPU; skipped with one GPU.
"""

from __future__ import annotations

import argparse
import json
import math

import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "gpu"))

from gpu_checks import CHECKS, FUNCS, Skip  # noqa: E402  (the checks: tests/gpu/gpu_checks.py)


# --------------------------------------------------------------------------- the runner
def run_one(name: str, device: str, smoke: bool, result_path: str) -> int:
    """A check in this process; its result is written to ``result_path`` as JSON."""
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    t0 = time.time()
    try:
        res = {"status": "pass", **FUNCS[name](device, smoke)}
    except Skip as s:
        res = {"status": "skipped", "reason": str(s)}
    except AssertionError as err:
        res = {"status": "fail", "reason": str(err)[:2000]}
    except Exception as err:  # noqa: BLE001
        import traceback

        res = {"status": "error", "reason": f"{type(err).__name__}: {err}"[:1000],
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="list the checks and exit")
    ap.add_argument("--only", nargs="+", choices=[c[0] for c in CHECKS], default=None)
    ap.add_argument("--budget", type=float, default=300.0, help="seconds for the whole suite")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny sizes (to exercise the code, e.g. with --device cpu)")
    ap.add_argument("--run-one", nargs=2, metavar=("CHECK", "RESULT_JSON"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run_one:
        return run_one(args.run_one[0], args.device, args.smoke, args.run_one[1])
    checks = [c for c in CHECKS if args.only is None or c[0] in args.only]
    if args.dry_run:
        for name, what, limit in checks:
            print(f"{name:20s} <= {limit:3d}s  {what}")
        print(json.dumps({"dry_run": True, "budget_s": args.budget,
                          "checks": [{"name": n, "what": w, "limit_s": s}
                                     for n, w, s in checks]}))
        return 0
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(json.dumps({"passed": False, "error": "no CUDA device (use --dry-run, or "
                          "--smoke --device cpu)"}))
        return 2
    doc = {"suite": "gpu_suite", "torch": torch.__version__, "device": args.device,
           "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
           "gpus_visible": torch.cuda.device_count() if torch.cuda.is_available() else 0,
           "smoke": args.smoke, "checks": {}}
    t_start = time.time()
    for name, what, limit in checks:
        left = args.budget - (time.time() - t_start)
        if left < min(limit, 20):
            doc["checks"][name] = {"status": "skipped", "reason": "time budget spent"}
            continue
        timeout = min(limit * (3 if args.smoke else 1), left)
        print(f"[{time.time() - t_start:5.0f}s] {name}: {what} (<= {timeout:.0f}s)", flush=True)
        with tempfile.TemporaryDirectory(prefix="lottery-mia-suite-") as tmp:
            result = Path(tmp) / "result.json"
            cmd = [sys.executable, str(Path(__file__).resolve()), "--run-one", name,
                   str(result), "--device", args.device] + (["--smoke"] if args.smoke else [])
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
                res = (json.loads(result.read_text()) if result.exists() else
                       {"status": "error", "reason": f"exit {proc.returncode}",
                        "output": (proc.stdout + proc.stderr)[-3000:]})
            except subprocess.TimeoutExpired as exp:
                out = exp.stdout.decode() if isinstance(exp.stdout, bytes) else exp.stdout
                res = {"status": "error", "reason": f"timed out after {timeout:.0f}s",
                       "output": (out or "")[-2000:]}
        doc["checks"][name] = res
        print(f"        {res['status']} ({res.get('seconds', '-')}s)"
              + (f": {res.get('reason', '')[:300]}" if res["status"] != "pass" else ""),
              flush=True)
    doc["seconds"] = round(time.time() - t_start, 1)
    doc["passed"] = all(r["status"] in ("pass", "skipped") for r in doc["checks"].values())
    print(json.dumps(doc, default=_jsonable))
    return 0 if doc["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
