"""Training throughput: run_training vs a bare forward/backward/step loop.

    .venv/bin/python benchmarks/train_throughput.py --quick            # CPU, < 2 minutes
    .venv/bin/python benchmarks/train_throughput.py --device cuda      # GPU: width 64, 32x32
    .venv/bin/python benchmarks/train_throughput.py --device cuda --jobs 2 --batches 128

For each batch size (default 128, 256, 512) it measures, on the same model (ResNet18, CIFAR
stem) and random CIFAR-shaped data held on the device:

- ``project``: images/s of one epoch of :func:`lottery_mia.training.run_training` (the real
  step: the runtime's AMP/channels_last/CUDA graphs, on-device sums, the data set's batching
  and normalisation), best of the epochs after the first (warm-up, graph capture); only the
  epochs' training steps are timed, never an evaluation;
- ``bare``: images/s of a plain loop ``model(x); loss.backward(); opt.step()`` over batches
  made beforehand, with the same runtime settings (AMP, channels_last, cuDNN's benchmark
  mode, as ``run_training`` turns it on) and no CUDA graph, after as many warm-up steps as
  the project's measurement discards (its first epoch), best of the rounds after;
- ``ratio_vs_bare`` = project / bare at the same batch, and TFLOP/s of each (FLOPs of one
  step from torch.utils.flop_counter.FlopCounterMode).

On the CPU the images/s (and ``ratio_vs_bare``) come from process CPU time, which other load
on a shared machine barely moves; the wall-clock figures are printed beside them. On CUDA
they are wall clock.

``--jobs K`` runs K project measurements at once as separate processes on the one device
(CPU threads split between them) and reports their summed images/s. The last line printed is
one JSON object with every number (``ratio_vs_bare``: the lowest over the batch sizes).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def _model(width, device, rt):
    import torch

    from lottery_mia.networks import build_model

    torch.manual_seed(0)
    return rt.prepare(build_model("resnet18", 10, width=width, in_channels=3, small_input=True))


def _data(n, size, device, channels_last, seed=0):
    import numpy as np

    from lottery_mia.data import TensorImageSet

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8)
    y = rng.integers(0, 10, n)
    return TensorImageSet(x, y, [0.5] * 3, [0.25] * 3, device=device, channels_last=channels_last)


def _sync(device):
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def flops_per_step(width, size, batch, device, rt) -> float:
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    model = _model(width, device, rt)
    probe = 8  # FLOPs are linear in the batch: count a small one and scale
    x = torch.randn(probe, 3, size, size, device=device)
    y = torch.randint(0, 10, (probe,), device=device)
    with FlopCounterMode(display=False) as fc:
        with rt.autocast():
            loss = F.cross_entropy(model(x).float(), y)
        loss.backward()
    return float(fc.get_total_flops()) * batch / probe


class _Timed:
    """Wraps a data set: wall and process CPU seconds of each pass over train_batches, i.e.
    of each epoch's step loop (from its first batch request to its end)."""

    def __init__(self, inner, device):
        self.inner, self.device, self.epochs = inner, device, []

    def __len__(self):
        return len(self.inner)

    def eval_batches(self, batch_size):
        return self.inner.eval_batches(batch_size)

    def train_batches(self, *a, **kw):
        _sync(self.device)
        w0, c0 = time.perf_counter(), time.process_time()
        yield from self.inner.train_batches(*a, **kw)
        _sync(self.device)
        self.epochs.append((time.perf_counter() - w0, time.process_time() - c0))


def measure_project(width, size, batch, steps, epochs, device, threads=None) -> dict:
    """images/s (wall and process CPU time) of ``run_training``'s training passes: the best
    epoch after the first (warm-up and graph capture); evaluation is not timed."""
    import torch

    from lottery_mia.runtime import make_runtime
    from lottery_mia.recipe import Recipe
    from lottery_mia.training import run_training

    if threads:
        torch.set_num_threads(threads)
    rt = make_runtime(device)
    train = _data(batch * steps, size, device, rt.channels_last)
    test = _data(16, size, device, rt.channels_last, seed=1)  # evaluation is not timed
    rec = Recipe.from_dict(dict(epochs=epochs, batch_size=batch, lr=0.05, width=width,
                                eval_every=0, eval_batch_size=batch, num_workers=0))
    model = _model(width, device, rt)
    timed = _Timed(train, device)
    run_training(model, timed, test, rec, seed=0, device=torch.device(device), runtime=rt)
    timed_epochs = timed.epochs[1:] or timed.epochs  # the first epoch warms up
    wall = min(w for w, _ in timed_epochs)
    cpu = min(c for _, c in timed_epochs)
    return {"images_per_s": batch * steps / wall, "cpu_images_per_s": batch * steps / cpu}


def measure_bare(width, size, batch, steps, rounds, device) -> dict:
    """images/s (wall and process CPU time) of the bare loop: one warm-up round of
    ``steps`` steps (the project's first epoch), then the best of ``rounds`` timed rounds,
    with cuDNN's benchmark mode on (as ``run_training`` has it on CUDA)."""
    import torch
    import torch.nn.functional as F

    from lottery_mia.data import as_model_input
    from lottery_mia.runtime import make_runtime

    rt = make_runtime(device, {"cuda_graphs": False})
    model = _model(width, device, rt)
    opt = rt.optimizer(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(steps):
        x = as_model_input(torch.randn(batch, 3, size, size, generator=g).to(device),
                           rt.channels_last)
        batches.append((x, torch.randint(0, 10, (batch,), generator=g).to(device)))
    model.train()
    best, best_cpu = float("inf"), float("inf")
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True  # cuDNN picks its fastest algorithms, as in the
    try:  # project's loop (training._cudnn_benchmark)
        for r in range(rounds + 1):  # round 0 warms up: the steps of the project's epoch 1
            _sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
            for x, y in batches:
                with rt.autocast():
                    loss = F.cross_entropy(model(x).float(), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            _sync(device)
            if r > 0:
                best = min(best, time.perf_counter() - t0)
                best_cpu = min(best_cpu, time.process_time() - c0)
    finally:
        torch.backends.cudnn.benchmark = saved
    return {"images_per_s": batch * steps / best, "cpu_images_per_s": batch * steps / best_cpu}


def _job(args_tuple, queue):
    from lottery_mia.io import log  # noqa: F401  (keeps the child's imports identical)

    queue.put(measure_project(*args_tuple))


def measure_jobs(k, width, size, batch, steps, epochs, device, threads) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_job, args=((width, size, batch, steps, epochs, device,
                                             threads), queue)) for _ in range(k)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=3600) for _ in procs]
    for p in procs:
        p.join()
    return {"jobs": k, "aggregate_images_per_s": sum(r["images_per_s"] for r in results),
            "per_job_images_per_s": [r["images_per_s"] for r in results]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batches", type=int, nargs="+", default=None,
                    help="batch sizes (default 128 256 512; --quick: 128 256)")
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=50, help="steps per epoch")
    ap.add_argument("--epochs", type=int, default=3, help="epochs of run_training (first: warm-up)")
    ap.add_argument("--jobs", type=int, default=1, help="concurrent run_training processes")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads per job")
    ap.add_argument("--quick", action="store_true",
                    help="CPU smoke size, < 2 min on 2 cores: width 16, 32x32, batches 128 "
                         "and 256, 2 steps per epoch, one torch thread per job")
    args = ap.parse_args()
    if args.quick:
        args.width, args.image_size, args.steps, args.epochs = 16, 32, 2, 2
        args.batches = args.batches or [128, 256]
        args.threads = args.threads or 1  # one thread: CPU time free of OpenMP spin-waiting
    args.batches = args.batches or [128, 256, 512]

    import torch

    from lottery_mia.runtime import make_runtime

    cores = os.cpu_count() or 1
    threads = args.threads or (max(1, cores // args.jobs) if args.device == "cpu" else None)
    if threads:
        torch.set_num_threads(threads)
    rt = make_runtime(args.device)
    rows = []
    for batch in args.batches:
        flops = flops_per_step(args.width, args.image_size, batch, args.device, rt)
        bare = measure_bare(args.width, args.image_size, batch, args.steps, args.epochs - 1,
                            args.device)
        proj = measure_project(args.width, args.image_size, batch, args.steps, args.epochs,
                               args.device)
        cpu_timing = rt.device.type == "cpu"
        key = "cpu_images_per_s" if cpu_timing else "images_per_s"
        row = {"batch": batch, "project_images_per_s": round(proj[key], 1),
               "bare_images_per_s": round(bare[key], 1),
               "ratio_vs_bare": round(proj[key] / bare[key], 3),
               "project_wall_images_per_s": round(proj["images_per_s"], 1),
               "bare_wall_images_per_s": round(bare["images_per_s"], 1),
               "ratio_vs_bare_wall": round(proj["images_per_s"] / bare["images_per_s"], 3),
               "gflop_per_image": round(flops / batch / 1e9, 4),
               "project_tflop_s": round(flops / batch * proj[key] / 1e12, 4),
               "bare_tflop_s": round(flops / batch * bare[key] / 1e12, 4)}
        if args.jobs > 1:
            agg = measure_jobs(args.jobs, args.width, args.image_size, batch, args.steps,
                               args.epochs, args.device, threads)
            row["jobs"] = args.jobs
            row["aggregate_images_per_s"] = round(agg["aggregate_images_per_s"], 1)
        rows.append(row)
        print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    summary = {"device": str(rt.device), "gpu": (torch.cuda.get_device_name()
                                                  if rt.is_cuda else None),
               "timing": ("process CPU time (robust to other load on a shared CPU; wall-clock "
                          "figures beside it)" if rt.device.type == "cpu" else "wall clock"),
               "cuda_graphs": rt.cuda_graphs, "amp": rt.amp, "width": args.width,
               "image_size": args.image_size, "steps": args.steps, "threads": threads,
               "jobs": args.jobs, "quick": args.quick, "results": rows,
               "ratio_vs_bare": min(r["ratio_vs_bare"] for r in rows)}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
