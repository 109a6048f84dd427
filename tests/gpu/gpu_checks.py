"""The GPU checks of the project (run by benchmarks/gpu_suite.py, each in a process group of
its own with a time limit, and by tests/gpu/test_gpu_checks.py under pytest, skipped without a
GPU). Each check is a function ``check_<name>(device, smoke) -> dict`` of numbers that raises
AssertionError when the check fails and :class:`Skip` only when it does not apply here (one
GPU for a two-GPU check, a CPU for a CUDA-only one), never for lack of time: the runner
decides that, and a check it skips fails the suite. ``smoke``: small sizes through the same
code paths (most checks also run on a CPU that way). benchmarks/gpu_suite.py's doc says what
each one checks.

Importing this module needs nothing beyond the standard library (the suite's ``--dry-run``
reads :data:`CHECKS` on a machine without torch); the checks import torch, numpy and the
project (which needs pydantic and safetensors) when they run."""

from __future__ import annotations

import contextlib
import io
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from queue import Empty

ROOT = Path(__file__).resolve().parents[2]
for _p in (ROOT / "src", ROOT / "benchmarks"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

# name, what it checks, time limit (s) of the full check on one H100/H200 (process start,
# imports and CUDA initialisation included), time limit (s) of its --smoke sizes. The suite's
# budgets hold the sums (benchmarks/gpu_suite.py: 540 s full, 240 s smoke, 30 s of each kept
# for its own start); tests/test_gpu_suite.py checks that they do.
CHECKS = [
    ("learns", "train_dense: digits ResNet18 w16 on the device reaches test accuracy >= 0.9",
     30, 15),
    ("graph_vs_eager", "CUDA-graph replay == its body run eagerly (float32: 1e-6)", 30, 12),
    ("sync_free", "producer and step under sync_debug_mode('error'), eager and graphed",
     45, 25),
    ("scoring_precision", "TF32 off: float32 logits vs float64 reference (<= 1e-4 of RMS)",
     25, 12),
    ("decode_matches_cpu", "the same JPEGs via nvJPEG and via libjpeg-turbo: views agree",
     25, 12),
    ("cuda_resume", "a job killed after epoch 1 resumes to the uninterrupted run's weights",
     40, 22),
    ("ddp_one_gpu", "1-rank DistributedDataParallel (NCCL) == the plain run, ranks agree",
     30, 18),
    ("dense_and_ticket", "dense + 80% ticket on the claimed GPU: bf16/NHWC, mask holds",
     35, 12),
    ("train_throughput", "CIFAR ResNet18 w64 img/s at batch 128 and 512, ratio to bare",
     55, 12),
    ("gpu_slots", "2 and 3 jobs sharing one GPU via gpu_slots: aggregate img/s", 60, 30),
    ("imagenet_data_path", "GPU-decoded JPEGs feeding ResNet50: img/s, ratio to synthetic",
     85, 20),
    ("ddp", "2-GPU DistributedDataParallel dense + ticket (not applicable with 1 GPU)",
     50, 20),
]

# What the checks import beyond a GPU machine's own torch, torchvision, numpy, pandas,
# pyarrow, scikit-learn and matplotlib (and what those pull in, Pillow among them): the
# distribution and a statement that must run. benchmarks/gpu_suite.py installs the ones that
# fail from gpu-wheels/, which benchmarks/prepare_gpu_wheels.py fills (dependencies too).
REQUIREMENTS = [
    ("pydantic", "from pydantic import BaseModel, ConfigDict, Field, field_validator"),
    ("safetensors", "from safetensors import safe_open"),  # every checkpoint and resume state
    ("PyYAML", "import yaml"),  # tests/conftest.py, for sync_free's pytest run
    ("pytest", "import pytest"),  # sync_free: the CUDA tests of tests/test_runtime.py
]

# A training throughput whose FLOPs per second exceed this is a measurement error (an empty
# or skipped CUDA graph, an unsynchronised clock), not a fast GPU: the dense bf16 tensor-core
# peak of an H100 or H200 SXM is 989 TFLOP/s, so 2,000 leaves room for any single GPU the
# suite is meant for.
PEAK_FLOPS_CAP = 2000e12

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class Skip(Exception):
    """A check that does not apply here (the reason is its message)."""


def _sync(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _time_left(default: float = 600.0) -> float:
    """Seconds until the suite kills this check (``GPU_SUITE_DEADLINE``, set by
    benchmarks/gpu_suite.py), or ``default`` outside the suite: waits inside a check end
    before that, with a message naming what they waited for."""
    deadline = os.environ.get("GPU_SUITE_DEADLINE")
    if not deadline:
        return default
    return max(1.0, float(deadline) - time.time())


def _wait_s(reserve: float = 5.0, default: float = 600.0) -> float:
    """How long one wait (a barrier, a queue, a child process) may last: the check's time
    left less ``reserve`` seconds for the check to report why it stopped waiting."""
    return max(1.0, _time_left(default) - reserve)


def _float_state(model) -> dict:
    """The floating-point tensors of ``model``'s state (weights, BatchNorm statistics; not
    its step counters, which would set the scale of a comparison): float32 copies on the
    CPU."""
    import torch

    return {k: v.detach().to("cpu", torch.float32, copy=True)
            for k, v in model.state_dict().items() if v.is_floating_point()}


def _cifar_set(n, size, device, channels_last, seed=0, classes=10):
    import numpy as np

    from lottery_mia.data import TensorImageSet

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8)
    y = rng.integers(0, classes, n)
    return TensorImageSet(x, y, [0.5] * 3, [0.25] * 3, device=device,
                          channels_last=channels_last)


def train_flops_per_image(arch: str, classes: int, width: int, size: int, device, *,
                          in_channels: int = 3, small_input: bool = True) -> float:
    """FLOPs of one training image (forward and backward, FlopCounterMode's count of the
    matrix products and convolutions) of the network ``build_model`` makes."""
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    from lottery_mia.networks import build_model

    model = build_model(arch, classes, width=width, in_channels=in_channels,
                        small_input=small_input).to(device)
    probe = 2  # FLOPs are linear in the batch (BatchNorm in training mode needs 2 images)
    x = torch.randn(probe, in_channels, size, size, device=device)
    y = torch.zeros(probe, dtype=torch.long, device=device)
    with FlopCounterMode(display=False) as fc:
        F.cross_entropy(model(x), y).backward()
    return float(fc.get_total_flops()) / probe


def plausible_throughput(label: str, images_per_s: float, flops_per_image: float) -> float:
    """The TFLOP/s a training throughput implies; an AssertionError when it is not a
    positive finite number or exceeds :data:`PEAK_FLOPS_CAP` (a measurement error)."""
    if not (math.isfinite(images_per_s) and images_per_s > 0):
        raise AssertionError(f"{label}: {images_per_s} images/s is not a throughput")
    flops = images_per_s * flops_per_image
    if flops > PEAK_FLOPS_CAP:
        raise AssertionError(
            f"{label}: {images_per_s:.0f} images/s x {flops_per_image / 1e9:.3f} GFLOP per "
            f"training image = {flops / 1e12:.0f} TFLOP/s, above any GPU's peak "
            f"({PEAK_FLOPS_CAP / 1e12:.0f}): the timing measured no real work")
    return flops / 1e12


def _digits_split(d: Path):
    """The bundled digits split in halves (898 members train, 899 non-members test)."""
    from lottery_mia.data import DataSpec
    from lottery_mia.jobs.split import build_membership_split

    build_membership_split("digits", None, key="datasets.digits.root", download=False,
                           members=None, nonmembers=None, scored_members=None, seed=0,
                           output=d / "membership.parquet")
    return DataSpec("digits", "digits", None, str(d / "membership.parquet"))


def _dense_job(data, out: Path, recipe: dict, device: str) -> dict:
    """The project's dense training job (``train_dense``: device claim, runtime, resume
    state, safetensors outputs) writing into ``out``."""
    from lottery_mia.jobs.train import train_dense

    return train_dense(data=data, arch="resnet18", recipe=recipe, seed=0, rewind_epoch=1,
                       device=device, out_model=out / "model.pt", out_init=out / "init.pt",
                       out_rewind=out / "rewind.pt", out_metrics=out / "metrics.json")


# --------------------------------------------------------------------------- checks
def check_sync_free(device: str, smoke: bool) -> dict:
    """The batch producer (an epoch plan drawn on the GPU) and the training step, eager and
    graphed, run under ``torch.cuda.set_sync_debug_mode("error")``; then the CUDA tests of
    tests/test_runtime.py, which must all run and pass (pytest comes from gpu-wheels/)."""
    import torch

    from lottery_mia.data import Augment
    from lottery_mia.networks import build_model
    from lottery_mia.pruning import get_method
    from lottery_mia.runtime import make_runtime
    from lottery_mia.training import _GraphedStep, _Totals, make_step

    if torch.device(device).type != "cuda":
        raise Skip("sync_debug_mode needs CUDA")
    out = {}
    batch = 64 if smoke else 256
    data = _cifar_set(batch * 12, 32, device, True)
    for graphs in (False, True):
        torch.manual_seed(0)
        rt = make_runtime(device, {"cuda_graphs": graphs})
        model = rt.prepare(build_model("resnet18", 10, width=16, small_input=True))
        mask = get_method("oneshot").mask_at(model, 0.8).to(device)
        mask.apply_(model)
        opt = rt.optimizer(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        totals = _Totals(rt.device)
        step = make_step(model, opt, mask, rt, totals)
        assert isinstance(step, _GraphedStep) == graphs
        plan = data.epoch_plan(batch, 3, Augment(crop_padding=4, hflip=True))
        model.train()
        for i in range(5):  # warm-up steps, the capture, one replay
            xb, yb = data.plan_batch(plan, i)
            step(xb, yb, 0.05)
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            for i in range(5, plan.steps):
                xb, yb = data.plan_batch(plan, i)
                step(xb, yb, 0.04)
        finally:
            torch.cuda.set_sync_debug_mode(0)
        torch.cuda.synchronize()
        if not bool(torch.isfinite(totals.loss_sum)):
            raise AssertionError("the loss is not finite")
        out["graphed" if graphs else "eager"] = {"steps_checked": plan.steps - 5}
    tests = ROOT / "tests" / "test_runtime.py"
    import importlib.util

    if importlib.util.find_spec("pytest") is None:  # the suite installs it (gpu-wheels/)
        raise AssertionError("pytest does not import: the CUDA tests of tests/test_runtime.py "
                             "cannot run (benchmarks/gpu_suite.py installs it from gpu-wheels/"
                             ", made by benchmarks/prepare_gpu_wheels.py)")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", str(tests),
                           "-k", "cuda", "-p", "no:cacheprovider"],
                          capture_output=True, text=True, timeout=_wait_s(reserve=3),
                          cwd=str(ROOT))
    summary = (proc.stdout.strip().splitlines() or [""])[-1]
    out["pytest_cuda_tests"] = {"returncode": proc.returncode, "summary": summary}
    if proc.returncode != 0:
        out["pytest_output"] = proc.stdout[-3000:]
        raise AssertionError(f"the CUDA tests of tests/test_runtime.py failed: {summary}")
    if " passed" not in summary or "skipped" in summary:
        raise AssertionError(f"the CUDA tests of tests/test_runtime.py did not all run: "
                             f"{summary}")
    return out


def check_graph_vs_eager(device: str, smoke: bool) -> dict:
    """The captured step replayed vs the same step body run op by op (deterministic cuDNN,
    no TF32): the same kernels, so the same numbers (float32: within 1e-6 of the weights'
    scale, normally bitwise). The project's eager step (fused SGD, a float learning rate)
    is compared too and reported: its SGD arithmetic differs in the last bits, which a few
    steps of training on random labels amplify to about 1e-4."""
    import torch

    from lottery_mia.data import as_model_input
    from lottery_mia.networks import build_model
    from lottery_mia.pruning import get_method
    from lottery_mia.runtime import Runtime
    from lottery_mia.scoring import float32_math
    from lottery_mia.training import _EagerStep, _GraphedStep, _Totals

    cuda = torch.device(device).type == "cuda"
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    out = {}
    for amp in ((False, True) if cuda else (False,)):
        rt = Runtime(torch.device(device), amp=amp, channels_last=cuda, cuda_graphs=cuda)
        runs = {}
        for kind in ("eager", "body", "graphed"):
            if kind == "graphed" and not cuda:
                continue
            torch.manual_seed(0)
            model = rt.prepare(build_model("resnet18", 10, width=16 if smoke else 32,
                                           small_input=True))
            mask = get_method("oneshot").mask_at(model, 0.8).to(device)
            mask.apply_(model)
            opt = rt.optimizer(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4,
                               nesterov=True)
            totals = _Totals(rt.device)
            step = (_EagerStep(model, opt, mask, rt, totals) if kind == "eager" else
                    _GraphedStep(model, opt, mask, rt, totals, warmup=3,
                                 capture=kind == "graphed"))
            g = torch.Generator().manual_seed(1)
            losses = []
            model.train()
            with float32_math():  # no TF32: the comparison is of float32 arithmetic
                for i in range(8):
                    xb = as_model_input(torch.randn(64, 3, 32, 32, generator=g).to(device),
                                        rt.channels_last)
                    yb = torch.randint(0, 10, (64,), generator=g).to(device)
                    totals.reset()
                    step(xb, yb, 0.01 * (1 - i / 8))
                    losses.append(float(totals.loss_sum) / 64)
            if kind == "graphed" and step.graph is None:
                raise AssertionError("the graphed step never captured a graph")
            state = _float_state(model)  # the weights' scale: no step counters in it
            zeros = all(bool(torch.all(state[n][t.cpu() == 0] == 0))
                        for n, t in mask.tensors.items())
            if not zeros:
                raise AssertionError(f"{kind} step revived pruned weights")
            runs[kind] = (losses, state)

        def diff(a, b):
            (la, sa), (lb, sb) = runs[a], runs[b]
            scale = max(float(v.abs().max()) for v in sa.values() if v.is_floating_point())
            return {"max_loss_rel_diff": max(abs(x - y) / max(abs(x), 1e-12)
                                             for x, y in zip(la, lb)),
                    "max_weight_diff_over_scale": max(
                        float((sa[k] - sb[k]).abs().max()) for k in sa
                        if sa[k].is_floating_point()) / scale}

        key = "bf16" if amp else "float32"
        row = {"body_vs_eager": diff("body", "eager")}
        if cuda:
            row["graphed_vs_body"] = diff("graphed", "body")
            row["graphed_vs_eager"] = diff("graphed", "eager")
            worst = row["graphed_vs_body"]["max_weight_diff_over_scale"]
            if worst > (1e-6 if not amp else 1e-2):
                raise AssertionError(f"{key}: the replayed graph differs from its body run "
                                     f"eagerly by {worst:.2e} of the weights' scale")
        if row["body_vs_eager"]["max_weight_diff_over_scale"] > 1e-2:
            raise AssertionError(f"{key}: the graphed step's body and the eager step "
                                 f"disagree: {row['body_vs_eager']}")
        out[key] = row
    return out


def check_scoring_precision(device: str, smoke: bool) -> dict:
    """Scoring's float32 logits (``predict_views``, TF32 off) against a float64 reference
    of the same network and images: max |difference| / RMS of the logits <= 1e-4 (float32
    through a ResNet18 is about 1e-6 to 1e-5); TF32's error is reported beside it."""
    import torch

    from lottery_mia.networks import build_model
    from lottery_mia.scoring import predict_views

    class Batches:  # an image set of fixed float batches
        def __init__(self, x, y, bs):
            self.x, self.y, self.bs = x, y, bs

        def eval_batches(self, batch_size):
            for i in range(0, len(self.y), batch_size):
                yield self.x[i:i + batch_size], self.y[i:i + batch_size]

    torch.manual_seed(0)
    model = build_model("resnet18", 100, width=16 if smoke else 64, small_input=True)
    with torch.no_grad():  # BatchNorm statistics of a trained-looking network
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    g = torch.Generator().manual_seed(1)
    n = 128 if smoke else 512
    x = torch.randn(n, 3, 32, 32, generator=g)
    y = torch.randint(0, 100, (n,), generator=g)
    (f32, f32_flip), _ = predict_views(model, Batches(x.to(device), y.to(device), 256), 256,
                                       device, views=2)
    ref = model.double().to(device).eval()  # float64 (on the GPU: no TF32 in float64)
    with torch.no_grad():
        xd = x.double().to(device)
        want = ref(xd).cpu().numpy()
        want_flip = ref(xd.flip(-1)).cpu().numpy()
    import numpy as np

    rms = float(np.sqrt(np.mean(want ** 2)))
    err = max(float(np.abs(f32 - want).max()), float(np.abs(f32_flip - want_flip).max())) / rms
    out = {"rms_logit": rms, "max_abs_err_over_rms": err, "tolerance": 1e-4}
    if torch.device(device).type == "cuda":  # for contrast: the same with TF32 on
        model = model.float().to(device).eval()
        matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
        try:
            saved = (matmul.allow_tf32, cudnn.allow_tf32)
            matmul.allow_tf32 = cudnn.allow_tf32 = True
            with torch.no_grad():
                tf32 = model(x.to(device)).cpu().numpy()
            matmul.allow_tf32, cudnn.allow_tf32 = saved
            out["tf32_max_abs_err_over_rms"] = float(np.abs(tf32 - want).max()) / rms
        except RuntimeError as e:  # the new fp32_precision API is in use
            out["tf32_max_abs_err_over_rms"] = f"not measured: {e}"[:200]
    if not err <= 1e-4:
        raise AssertionError(f"float32 scoring is {err:.2e} of the logits' RMS from float64")
    return out


def check_train_throughput(device: str, smoke: bool) -> dict:
    """benchmarks/train_throughput.py's measurements: images/s of ``run_training``'s
    training passes after the first (warm-up, capture; evaluation untimed) and of the bare
    loop after as many warm-up steps, both physically possible."""
    import train_throughput as tt

    from lottery_mia.runtime import make_runtime

    rt = make_runtime(device)
    width, steps, epochs = (16, 2, 2) if smoke else (64, 50, 3)
    rows = []
    for batch in ((32,) if smoke else (128, 512)):
        per_image = tt.flops_per_step(width, 32, batch, device, rt) / batch
        bare = tt.measure_bare(width, 32, batch, steps, epochs - 1, device)
        proj = tt.measure_project(width, 32, batch, steps, epochs, device)
        rows.append({"batch": batch, "images_per_s": round(proj["images_per_s"], 1),
                     "bare_images_per_s": round(bare["images_per_s"], 1),
                     "ratio_vs_bare": round(proj["images_per_s"] / bare["images_per_s"], 3),
                     "tflop_s": round(plausible_throughput(
                         f"run_training at batch {batch}", proj["images_per_s"], per_image), 2),
                     "bare_tflop_s": round(plausible_throughput(
                         f"the bare loop at batch {batch}", bare["images_per_s"], per_image),
                         2)})
    out = {"width": width, "steps_per_epoch": steps, "cuda_graphs": rt.cuda_graphs,
           "results": rows, "target_batch128_images_per_s": 30000}
    b128 = [r for r in rows if r["batch"] == 128]
    if b128:
        out["meets_target"] = b128[0]["images_per_s"] >= 30000
    return out


class _Timed:
    """A data set whose training passes are timed; ``barrier`` (if any) is met at the
    start of the second pass, after the warm-up epoch, so concurrent jobs time the same
    window; ``done`` is the wall clock at the end of the last pass."""

    def __init__(self, inner, device, barrier=None):
        self.inner, self.device, self.barrier = inner, device, barrier
        self.epochs, self.start, self.done = [], None, None

    def __len__(self):
        return len(self.inner)

    def eval_batches(self, *a, **kw):
        return self.inner.eval_batches(*a, **kw)

    def train_batches(self, *a, **kw):
        _sync(self.device)
        if len(self.epochs) == 1:
            if self.barrier is not None:
                self.barrier.wait()
            self.start = time.time()
        t0 = time.perf_counter()
        n = 0
        for xb, yb in self.inner.train_batches(*a, **kw):
            n += yb.shape[0]
            yield xb, yb
        _sync(self.device)
        self.epochs.append((time.perf_counter() - t0, n))
        self.done = time.time()


def _slot_job(k: int, n_jobs: int, lock_dir: str, barrier, queue, smoke: bool,
              device: str) -> None:
    """One of the jobs sharing the GPU (a daemonic process of check_gpu_slots): claims a
    slot, trains, and puts its timed window (or its error) on ``queue``."""
    import torch

    from lottery_mia.devices import claim_device
    from lottery_mia.networks import build_model
    from lottery_mia.recipe import Recipe
    from lottery_mia.runtime import make_runtime
    from lottery_mia.training import run_training

    try:
        cuda = torch.device(device).type == "cuda"
        if not cuda:  # CPU threads shared out: oversubscribed OpenMP threads spin-wait
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // n_jobs))
        claim = claim_device("cuda" if cuda else "cpu", lock_dir=lock_dir, slots=n_jobs,
                             log=lambda m: None, timeout_s=_wait_s(reserve=20))
        with claim:
            dev = torch.device(claim.device)
            rt = make_runtime(dev)
            width, batch, steps = (16, 32, 4) if smoke else (64, 128, 60)
            train = _Timed(_cifar_set(batch * steps, 32, dev, rt.channels_last, seed=k), dev,
                           barrier)
            test = _cifar_set(64, 32, dev, rt.channels_last, seed=99)
            torch.manual_seed(k)
            model = build_model("resnet18", 10, width=width, small_input=True)
            rec = Recipe.from_dict(dict(epochs=4, batch_size=batch, lr=0.05, width=width,
                                        eval_every=0, eval_batch_size=512, num_workers=0))
            run_training(model, train, test, rec, seed=k, device=dev, runtime=rt)
            images = sum(n for _, n in train.epochs[1:])
            queue.put({"job": k, "device": claim.device,
                       "lock": claim.lock_path.name if claim.lock_path else None,
                       "start": train.start, "end": train.done, "images": images,
                       "images_per_s": images / sum(t for t, _ in train.epochs[1:])})
    except BaseException as err:  # noqa: BLE001
        queue.put({"job": k, "error": f"{type(err).__name__}: {err}"[:500]})


def check_gpu_slots(device: str, smoke: bool) -> dict:
    """2 and then 3 training jobs (daemonic processes) sharing one GPU through the slot
    locks of ``gpu_slots``, each holding its own lock, timed over the same window (a
    barrier after their warm-up epoch): aggregate images/s of their training passes,
    physically possible (target 40k at batch 128)."""
    import multiprocessing as mp

    import torch

    cuda = torch.device(device).type == "cuda"
    if not cuda and not smoke:
        raise Skip("needs CUDA")
    out = {"target_aggregate_images_per_s": 40000}
    width = 16 if smoke else 64
    per_image = None
    for n_jobs in (2, 3):
        ctx = mp.get_context("spawn")
        # every wait ends before the suite's kill, with a message: the barrier (the jobs
        # time the same window) and the results
        queue, barrier = ctx.Queue(), ctx.Barrier(n_jobs, timeout=_wait_s(reserve=15))
        procs = []
        with tempfile.TemporaryDirectory(prefix="lottery-mia-slots-") as tmp:
            lock_dir = Path(tmp) / "locks"
            env_before = os.environ.get("LOTTERY_MIA_SIMULATED_GPUS")
            os.environ["LOTTERY_MIA_SIMULATED_GPUS"] = "1"  # one GPU: the jobs must share it
            try:
                procs = [ctx.Process(target=_slot_job, daemon=True,
                                     args=(k, n_jobs, str(lock_dir), barrier, queue, smoke,
                                           device))
                         for k in range(n_jobs)]
                for p in procs:
                    p.start()
                rows = []
                for _ in procs:
                    try:
                        rows.append(queue.get(timeout=_wait_s(reserve=10)))
                    except Empty:
                        raise AssertionError(
                            f"{n_jobs} slot jobs: {len(rows)} reported before the check's "
                            f"time ran out ({rows})") from None
                for p in procs:
                    p.join(timeout=_wait_s(reserve=5))
            finally:
                for p in procs:
                    if p.is_alive():
                        p.kill()
                        p.join()
                if env_before is None:
                    os.environ.pop("LOTTERY_MIA_SIMULATED_GPUS", None)
                else:
                    os.environ["LOTTERY_MIA_SIMULATED_GPUS"] = env_before
        bad = [r for r in rows if "error" in r]
        if bad:
            raise AssertionError(f"{n_jobs} slot jobs: {bad}")
        locks = sorted(r["lock"] for r in rows if r["lock"])
        window = max(r["end"] for r in rows) - min(r["start"] for r in rows)
        agg = sum(r["images"] for r in rows) / window
        out[f"jobs_{n_jobs}"] = {"locks": locks, "devices": sorted({r["device"] for r in rows}),
                                 "per_job_images_per_s": [round(r["images_per_s"], 1)
                                                          for r in rows],
                                 "aggregate_images_per_s": round(agg, 1)}
        if cuda and len(set(locks)) != n_jobs:
            raise AssertionError(f"the {n_jobs} jobs did not hold one slot lock each: {locks}")
        if per_image is None:
            per_image = train_flops_per_image("resnet18", 10, width, 32, device)
        out[f"jobs_{n_jobs}"]["aggregate_tflop_s"] = round(plausible_throughput(
            f"{n_jobs} slot jobs", agg, per_image), 2)
    return out


def _write_jpegs(args) -> None:
    root, start, stop, classes = args
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(start)
    for i in range(start, stop):
        folder = Path(root) / "train" / f"n{i % classes:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        low = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
        img = np.asarray(Image.fromarray(low).resize((500, 375), Image.BICUBIC), np.int16)
        img = img + rng.normal(0, 18, img.shape).astype(np.int16)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
            folder / f"img{i:06d}.JPEG", quality=90)


def check_imagenet_data_path(device: str, smoke: bool) -> dict:
    """ImageNet-sized JPEGs through FolderImageSet feeding ResNet50 training: images/s of
    the training passes after the first (evaluation untimed) on synthetic input held on
    the device, with GPU decode and with CPU decode (loader workers), each physically
    possible; the GPU-decode ratio to synthetic input is the target."""
    import multiprocessing as mp

    import numpy as np
    import torch

    from lottery_mia.data import FolderImageSet, TensorImageSet
    from lottery_mia.networks import build_model
    from lottery_mia.recipe import Recipe
    from lottery_mia.runtime import make_runtime
    from lottery_mia.training import run_training

    cuda = torch.device(device).type == "cuda"
    arch, batch, steps, size = ("resnet18", 16, 2, 64) if smoke else ("resnet50", 256, 16, 224)
    n = batch * steps
    cores = os.cpu_count() or 1
    workers = 2 if smoke else max(2, min(12, cores - 2))
    out = {"arch": arch, "batch": batch, "images": n, "loader_workers": workers}
    with tempfile.TemporaryDirectory(prefix="lottery-mia-imagenet-") as tmp:
        t0 = time.time()
        chunks = [(tmp, i, min(i + 256, n), 100) for i in range(0, n, 256)]
        with mp.get_context("spawn").Pool(max(1, min(cores, 16))) as pool:  # daemonic
            pool.map_async(_write_jpegs, chunks).get(timeout=_wait_s(reserve=10))
        out["jpeg_write_s"] = round(time.time() - t0, 1)
        info_mean, info_std = IMAGENET_MEAN, IMAGENET_STD
        rt = make_runtime(device)
        per_image = train_flops_per_image(arch, 1000, 64, size, device, small_input=False)
        out["gflop_per_training_image"] = round(per_image / 1e9, 3)
        rec = Recipe.from_dict(dict(epochs=3, batch_size=batch, lr=0.1, width=64,
                                    weight_decay=1e-4, eval_every=0, eval_batch_size=batch,
                                    num_workers=workers, augment={"hflip": True}))

        def train(data, label) -> float:
            torch.manual_seed(0)
            model = build_model(arch, 1000, width=64, small_input=False)
            timed = _Timed(data, device)
            test = TensorImageSet(np.zeros((8, 3, size, size), np.uint8), np.zeros(8),
                                  info_mean, info_std, device=device,
                                  channels_last=rt.channels_last)
            run_training(model, timed, test, rec, seed=0, device=torch.device(device),
                         runtime=rt)
            best = min(t for t, _ in timed.epochs[1:])
            ips = timed.epochs[1][1] / best
            print(f"  {label}: {ips:.0f} images/s", flush=True)
            out[f"{label.replace(' ', '_')}_tflop_s"] = round(
                plausible_throughput(label, ips, per_image), 2)
            return ips

        synthetic = TensorImageSet(
            np.random.default_rng(0).integers(0, 256, (n, 3, size, size), dtype=np.uint8),
            np.random.default_rng(1).integers(0, 1000, n), info_mean, info_std,
            device=device, channels_last=rt.channels_last)
        out["synthetic_images_per_s"] = round(train(synthetic, "synthetic input"), 1)
        del synthetic
        paths = dict(device="gpu_decode", cpu="cpu_decode") if cuda else dict(cpu="cpu_decode")
        for decode, label in paths.items():
            ds = FolderImageSet(tmp, "train", np.arange(n), info_mean, info_std,
                                device=device, num_workers=workers,
                                channels_last=rt.channels_last, image_size=size,
                                decode=decode)
            ips = train(ds, label)
            out[f"{label}_images_per_s"] = round(ips, 1)
            out[f"{label}_ratio_vs_synthetic"] = round(ips / out["synthetic_images_per_s"], 3)
            del ds
    if cuda:
        out["target_ratio"] = 0.9
        out["meets_target"] = out["gpu_decode_ratio_vs_synthetic"] >= 0.9
    return out


def check_dense_and_ticket(device: str, smoke: bool) -> dict:
    """A dense ResNet18 and its 80% ticket trained with ``run_training`` on the claimed
    GPU: bf16 autocast on channels_last input, the ticket's sparsity exact and its pruned
    weights zero after retraining; images/s of the second epoch of each (the first warms
    up and captures; evaluation untimed), physically possible."""
    import numpy as np
    import torch

    from lottery_mia.data import TensorImageSet
    from lottery_mia.devices import claim_device
    from lottery_mia.masks import model_sparsity
    from lottery_mia.networks import build_model
    from lottery_mia.pruning import get_method
    from lottery_mia.recipe import Recipe
    from lottery_mia.datasets import source_info
    from lottery_mia.training import run_training

    cuda = torch.device(device).type == "cuda"
    info = source_info("cifar10")
    images, width = (256, 8) if smoke else (10_000, 64)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (images, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, 10, images)
    recipe = Recipe.from_dict({"epochs": 2, "batch_size": 64 if smoke else 256, "lr": 0.1,
                               "width": width, "eval_every": 0, "num_workers": 0,
                               "augment": {"crop_padding": 4, "hflip": True}})
    out = {}
    with claim_device("cuda" if cuda else "cpu", log=lambda m: None,
                      timeout_s=_wait_s(reserve=20)) as claim:
        dev = torch.device(claim.device)
        out["claimed"] = claim.device
        out["lock"] = str(claim.lock_path) if claim.lock_path else None
        train = TensorImageSet(x, y, info.mean, info.std, device=dev, channels_last=cuda)
        test = TensorImageSet(x[:512], y[:512], info.mean, info.std, device=dev,
                              channels_last=cuda)
        torch.manual_seed(0)
        model = build_model("resnet18", 10, width=width, in_channels=3, small_input=True)
        w0 = {k: v.clone() for k, v in model.state_dict().items()}
        seen = set()
        hook = model.conv1.register_forward_hook(
            lambda m, i, o: seen.add((str(o.dtype), i[0].is_contiguous(
                memory_format=torch.channels_last))))
        timed = {"dense": _Timed(train, dev), "ticket": _Timed(train, dev)}
        t0 = time.time()
        run_training(model, timed["dense"], test, recipe, seed=0, device=dev)
        _sync(dev)
        out["dense_job_seconds"] = round(time.time() - t0, 1)
        hook.remove()
        if cuda and ("torch.bfloat16", True) not in seen:
            raise AssertionError(f"expected bf16 autocast on channels_last, saw {seen}")
        mask = get_method("oneshot").mask_at(model, 0.8)
        ticket = build_model("resnet18", 10, width=width, in_channels=3, small_input=True)
        ticket.load_state_dict(w0)
        mask.apply_(ticket)
        t0 = time.time()
        run_training(ticket, timed["ticket"], test, recipe, seed=0, device=dev, mask=mask)
        _sync(dev)
        out["ticket_job_seconds"] = round(time.time() - t0, 1)
        per_image = train_flops_per_image("resnet18", 10, width, 32, dev)
        for kind, t in timed.items():
            ips = sum(n for _, n in t.epochs[1:]) / sum(s for s, _ in t.epochs[1:])
            out[f"{kind}_images_per_s"] = round(ips, 1)
            out[f"{kind}_tflop_s"] = round(plausible_throughput(kind, ips, per_image), 2)
        sp = model_sparsity(ticket.cpu())["sparsity_prunable"]
        params = dict(ticket.named_parameters())
        revived = sum(int((params[k].detach()[t.cpu() == 0] != 0).sum())
                      for k, t in mask.tensors.items())
        out.update(ticket_sparsity=sp, pruned_nonzero=revived, conv1_seen=sorted(seen))
        if cuda:
            out["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated(dev) / 2**30, 2)
        if abs(sp - 0.8) > 1e-4 or revived:
            raise AssertionError(f"ticket sparsity {sp}, {revived} pruned weights not zero")
    return out


def check_ddp(device: str, smoke: bool) -> dict:
    """Two ranks (DistributedDataParallel, NCCL; gloo on the CPU in smoke mode): a digits
    dense run and its ticket, ranks identical, pruned weights zero, the same test accuracy
    as one GPU within 0.05. Not applicable with one GPU (decided before any import)."""
    import torch

    cuda = torch.device(device).type == "cuda"
    if cuda and torch.cuda.device_count() < 2:
        raise Skip(f"{torch.cuda.device_count()} GPU visible: DDP needs 2")
    if not cuda and not smoke:
        raise Skip("needs CUDA")

    from lottery_mia.data import DataSpec
    from lottery_mia.jobs.split import build_membership_split
    from lottery_mia.jobs.train import train_dense, train_ticket
    from lottery_mia.masks import Mask
    from lottery_mia.pruning import get_method

    out = {}
    with tempfile.TemporaryDirectory(prefix="lottery-mia-ddp-") as tmp:
        d = Path(tmp)
        build_membership_split("digits", None, key="datasets.digits.root", download=False,
                               members=None, nonmembers=None, scored_members=None, seed=0,
                               output=d / "membership.parquet")
        data = DataSpec("digits", "digits", None, str(d / "membership.parquet"))
        recipe = dict(width=16, epochs=4, batch_size=128, lr=0.05, eval_every=0,
                      num_workers=0, augment={"crop_padding": 1})
        runtime = {"cuda_graphs": "auto", "gpu_slots": 1}
        metrics = {}
        for gpus in (1, 2):
            o = d / f"dense{gpus}"
            t0 = time.time()
            metrics[gpus] = train_dense(
                data=data, arch="resnet18", recipe=recipe, seed=0, rewind_epoch=1,
                device=device, out_model=o / "model.pt", out_init=o / "init.pt",
                out_rewind=o / "rewind.pt", out_metrics=o / "metrics.json", threads=4,
                runtime=runtime, gpus=gpus)
            out[f"dense_gpus{gpus}"] = {"test_acc": metrics[gpus]["test_acc"],
                                        "seconds": round(time.time() - t0, 1),
                                        "device": metrics[gpus]["device"]}
        from lottery_mia.checkpoints import load_checkpoint

        model, _ = load_checkpoint(d / "dense1" / "model.pt")
        get_method("oneshot").mask_at(model, 0.8).save(d / "mask.pt")
        ticket = train_ticket(data=data, arch="resnet18", recipe=recipe, seed=0,
                              sparsity=0.8, device=device, mask_path=d / "mask.pt",
                              start_path=d / "dense2" / "rewind.pt", rewind_epoch=1,
                              out_model=d / "t.pt", out_metrics=d / "t.json", threads=4,
                              runtime=runtime, gpus=2)
        saved, _ = load_checkpoint(d / "t.pt")
        params = dict(saved.named_parameters())
        revived = sum(int((params[k].detach()[t == 0] != 0).sum())
                      for k, t in Mask.load(d / "mask.pt").tensors.items())
        out["ticket_gpus2"] = {"distributed": ticket["distributed"],
                               "test_acc": ticket["test_acc"], "pruned_nonzero": revived}
        out["dense_distributed"] = metrics[2]["distributed"]
        gap = abs(metrics[1]["test_acc"] - metrics[2]["test_acc"])
        out["test_acc_gap_1_vs_2_gpus"] = gap
        if revived or not ticket["distributed"]["ranks_identical"]:
            raise AssertionError("masks or ranks disagree under DDP")
        if gap > 0.05:  # bf16 and cuDNN's algorithms: not bitwise, but the same network
            raise AssertionError(f"2 GPUs reach test accuracy {metrics[2]['test_acc']:.3f}, "
                                 f"1 GPU {metrics[1]['test_acc']:.3f}")
    return out


def check_learns(device: str, smoke: bool) -> dict:
    """A small real run must learn: the project's dense training job (``train_dense``:
    device claim, runtime with bf16, channels_last and CUDA graphs on CUDA, safetensors
    outputs) of ResNet18 width 16 on the bundled digits, 898 members, tested on the 899
    non-members: test accuracy >= 0.9 (chance is 0.1; a CPU run reaches 0.97 in 4 epochs).
    Its images/s are those of the training epochs after the first (warm-up, graph
    capture), evaluation excluded, and must be physically possible."""
    import torch

    cuda = torch.device(device).type == "cuda"
    epochs = 6 if smoke else 10
    recipe = dict(width=16, epochs=epochs, batch_size=64, lr=0.05, eval_every=0,
                  num_workers=0)
    with tempfile.TemporaryDirectory(prefix="lottery-mia-learns-") as tmp:
        d = Path(tmp)
        data = _digits_split(d)
        t0 = time.time()
        m = _dense_job(data, d / "dense", recipe, device)
        seconds = time.time() - t0
    hist = m["history"][1:]
    images = m["steps_per_epoch"] * recipe["batch_size"] * len(hist)
    ips = images / sum(h["seconds"] for h in hist)
    flops = train_flops_per_image("resnet18", 10, 16, 8, device, in_channels=1)
    out = {"epochs": epochs, "test_acc": m["test_acc"], "train_acc": m["train_acc"],
           "device": m["device"], "job_seconds": round(seconds, 1),
           "train_images_per_s": round(ips, 1),
           "tflop_s": round(plausible_throughput("learns", ips, flops), 3)}
    if cuda and not str(m["device"]).startswith("cuda"):
        raise AssertionError(f"the job trained on {m['device']}, not on the GPU")
    if not m["test_acc"] >= 0.9:
        raise AssertionError(f"test accuracy {m['test_acc']:.3f} (train accuracy "
                             f"{m['train_acc']:.3f}) after {epochs} epochs: the run did not "
                             "learn")
    return out


def _write_decode_jpegs(root: str, n: int) -> None:
    """``n`` noisy photograph-like JPEGs of four shapes under ``root/train``: class 0 with
    4:2:0 chroma subsampling (ImageNet's), class 1 at 4:4:4 (no chroma upsampling, whose
    method differs between decoders)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(3)
    shapes = [(500, 375), (375, 500), (333, 500), (640, 427)]
    for i in range(n):
        full_chroma = i % 2
        folder = Path(root) / "train" / f"n{full_chroma:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        low = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
        w, h = shapes[(i // 2) % len(shapes)]
        img = np.asarray(Image.fromarray(low).resize((w, h), Image.BICUBIC), np.int16)
        img = img + rng.normal(0, 18, img.shape).astype(np.int16)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
            folder / f"img{i:04d}.JPEG", quality=90, subsampling=0 if full_chroma else 2)


# Decoders agree up to rounding: two IEEE-1180 inverse DCTs and the YCbCr->RGB conversion
# differ by 1-2 levels each, so at 4:4:4 a pixel differs by at most 4 levels; a view adds
# one level (the CPU path resizes in uint8, the device path in float: 1.0 measured with
# the same decoder). Chroma upsampling (4:2:0) differs by method, so there only the mean is
# bounded, by torchvision's own test of nvJPEG against libjpeg-turbo (mean < 2 levels).
DECODE_MAX_444, VIEW_MAX_444, DECODE_MEAN_MAX = 4.0, 5.0, 2.0


def check_decode_matches_cpu(device: str, smoke: bool) -> dict:
    """The GPU decode path of ``FolderImageSet`` (``decode="device"``: nvJPEG, crops and
    resizes in float on the device) against its CPU path (libjpeg-turbo, uint8 resizes in
    the loader): the same synthetic JPEGs, decoded (on CUDA every one by nvJPEG, none by
    the CPU fallback) and as evaluation and seeded training views (crop, flip), compared
    in levels of 0..255 (see the bounds above). The images must have content (a blank
    view on both paths would agree)."""
    import numpy as np
    import torch

    from lottery_mia.data import Augment, FolderImageSet
    from lottery_mia.imagesets.decoding import decode_rgb, read_image_bytes

    cuda = torch.device(device).type == "cuda"
    n, size = (8, 64) if smoke else (64, 224)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def levels(batches):
        xs, ys = zip(*[(x.float().cpu(), y.cpu()) for x, y in batches])
        return (torch.cat(xs) * std + mean) * 255.0, torch.cat(ys)

    out = {"images": n, "image_size": size}
    problems = []
    with tempfile.TemporaryDirectory(prefix="lottery-mia-decode-") as tmp:
        _write_decode_jpegs(tmp, n)
        sets = {decode: FolderImageSet(tmp, "train", np.arange(n), IMAGENET_MEAN,
                                       IMAGENET_STD, device=device, num_workers=0,
                                       image_size=size, decode=decode)
                for decode in ("device", "cpu")}
        gpu = sets["device"]
        datas = [read_image_bytes(gpu._files.path(i)) for i in range(n)]
        decoded = gpu._decode_on_device(datas, [("eval", i, 0, False) for i in range(n)])
        on = sorted({img.device.type for img in decoded})
        out["decoded_on"] = on
        if cuda and on != ["cuda"]:
            problems.append(f"nvJPEG did not decode every file (decoded on {on}): the "
                            "device path fell back to the CPU decoder")
        labels = gpu.y.numpy()
        reference = [decode_rgb(d, gpu._files.path(i)) for i, d in enumerate(datas)]
        shapes = [i for i in range(n) if decoded[i].shape != reference[i].shape]
        if shapes:
            raise AssertionError(f"the two decoders give other shapes for images {shapes}: "
                                 f"{[tuple(decoded[i].shape) for i in shapes]} vs "
                                 f"{[tuple(reference[i].shape) for i in shapes]}")
        for sub, want in (("444", 1), ("420", 0)):
            diffs = [(decoded[i].cpu().float() - reference[i].float()).abs()
                     for i in range(n) if labels[i] == want]
            out[f"decode_{sub}"] = {"max": max(float(d.max()) for d in diffs),
                                    "mean": float(torch.cat([d.flatten() for d in diffs])
                                                  .mean())}
        views = {}
        for decode, ds in sets.items():
            views[decode] = {"eval": levels(ds.eval_batches(16)),
                             "train": levels(ds.train_batches(16, 7, Augment(hflip=True)))}
    for kind in ("eval", "train"):
        (a, ya), (b, yb) = views["device"][kind], views["cpu"][kind]
        if a.shape != b.shape or not torch.equal(ya, yb):
            problems.append(f"{kind} views differ in shape or order: {tuple(a.shape)} vs "
                            f"{tuple(b.shape)}")
            continue
        if a.shape[0] != n:
            problems.append(f"{kind}: {a.shape[0]} views of {n} images")
        content = float(b.flatten(1).std(1).min())
        out[f"{kind}_min_std_levels"] = content
        if content < 10:
            problems.append(f"{kind} views are nearly blank (std {content:.1f} levels)")
        d = (a - b).abs()
        for sub, want in (("444", 1), ("420", 0)):
            sel = d[ya == want]
            out[f"{kind}_{sub}"] = {"max": float(sel.max()), "mean": float(sel.mean())}
    for key, row in out.items():
        if not (isinstance(row, dict) and "mean" in row):
            continue
        if row["mean"] > DECODE_MEAN_MAX:
            problems.append(f"{key}: mean difference {row['mean']:.2f} levels > "
                            f"{DECODE_MEAN_MAX}")
        bound = DECODE_MAX_444 if key.startswith("decode") else VIEW_MAX_444
        if key.endswith("444") and row["max"] > bound:
            problems.append(f"{key}: max difference {row['max']:.1f} levels > {bound}")
    out["bounds_levels"] = {"decode_444_max": DECODE_MAX_444, "view_444_max": VIEW_MAX_444,
                            "mean": DECODE_MEAN_MAX}
    if problems:
        raise AssertionError("; ".join(problems) + f" ({out})")
    return out


RESUME_DRIVER = """
import os, signal, sys
sys.path.insert(0, {src!r})
from pathlib import Path
from lottery_mia import training
from lottery_mia.data import DataSpec
from lottery_mia.jobs.train import train_dense

save_resume = training.save_resume


def save_and_die(*a, **kw):  # killed right after the first epoch's resume state is written
    save_resume(*a, **kw)
    os.kill(os.getpid(), signal.SIGKILL)


training.save_resume = save_and_die
out = Path({out!r})
train_dense(data=DataSpec("digits", "digits", None, {table!r}), arch="resnet18",
            recipe={recipe!r}, seed=0, rewind_epoch=1, device={device!r},
            out_model=out / "model.pt", out_init=out / "init.pt",
            out_rewind=out / "rewind.pt", out_metrics=out / "metrics.json")
"""


def _weights(path: Path) -> dict:
    """The float parameters of a checkpoint (BatchNorm's running statistics left out)."""
    from lottery_mia.checkpoints import load_checkpoint

    state = load_checkpoint(path)[1]["state_dict"]
    return {k: v.double() for k, v in state.items()
            if v.is_floating_point() and "running_" not in k}


def _distance(a: dict, b: dict) -> float:
    return math.sqrt(sum(float(((a[k] - b[k]) ** 2).sum()) for k in a))


def check_cuda_resume(device: str, smoke: bool) -> dict:
    """Resume on the device: the dense job (digits, ResNet18) run uninterrupted, and the
    same job in a subprocess SIGKILLed right after its first epoch's resume state is
    written, then rerun, which must log that it resumes. Its final and rewind weights are
    compared with the uninterrupted run's: on the CPU bit for bit (as tests/test_resume.py
    requires), on CUDA within 5% of the distance training moved the weights (the resumed
    run warms up and captures its CUDA graph again, and cuDNN picks its algorithms per
    process: last-bit differences that training amplifies; a lost optimizer state, data
    order or schedule moves the weights by a large part of that distance), and the test
    accuracies within 0.03."""
    import torch

    cuda = torch.device(device).type == "cuda"
    width, epochs = (8, 3) if smoke else (16, 4)
    recipe = dict(width=width, epochs=epochs, batch_size=64, lr=0.05, eval_every=0,
                  num_workers=0)
    tol = 0.05 if cuda else 0.0
    with tempfile.TemporaryDirectory(prefix="lottery-mia-resume-") as tmp:
        d = Path(tmp)
        data = _digits_split(d)
        ref = _dense_job(data, d / "reference", recipe, device)
        out = d / "resumed"
        driver = d / "driver.py"
        driver.write_text(RESUME_DRIVER.format(src=str(ROOT / "src"), out=str(out),
                                               table=data.membership, recipe=recipe,
                                               device=device))
        proc = subprocess.run([sys.executable, str(driver)], capture_output=True, text=True,
                              timeout=_wait_s(reserve=20))
        if proc.returncode != -signal.SIGKILL:
            raise AssertionError(f"the job to interrupt ended with {proc.returncode}, not "
                                 f"killed after its first epoch: "
                                 f"{(proc.stdout + proc.stderr)[-1500:]}")
        if not (out / "resume.pt").exists() or (out / "model.pt").exists():
            raise AssertionError("the killed job left no resume state (or a finished model)")
        logged = io.StringIO()
        with contextlib.redirect_stdout(logged):
            resumed = _dense_job(data, out, recipe, device)
        if "resuming from" not in logged.getvalue():
            raise AssertionError("the rerun did not resume from the killed job's state: "
                                 + logged.getvalue()[-1500:])
        init = _weights(d / "reference" / "init.pt")
        rows = {}
        for f in ("rewind.pt", "model.pt"):
            a, b = _weights(d / "reference" / f), _weights(out / f)
            moved = _distance(a, init)
            rows[f] = {"distance": _distance(a, b), "moved_by_training": moved,
                       "relative": _distance(a, b) / max(moved, 1e-30)}
        same_init = all(torch.equal(init[k], v) for k, v in _weights(out / "init.pt").items())
    gap = abs(ref["test_acc"] - resumed["test_acc"])
    result = {"epochs": epochs, "killed_after_epoch": 1, "tolerance_relative": tol,
              "weights": rows, "test_acc_reference": ref["test_acc"],
              "test_acc_resumed": resumed["test_acc"], "test_acc_gap": gap,
              "resumed_history_epochs": [h["epoch"] for h in resumed["history"]]}
    if not same_init:
        raise AssertionError("the two runs started from different weights w0")
    if result["resumed_history_epochs"] != list(range(1, epochs + 1)):
        raise AssertionError(f"the resumed run's history is {result['resumed_history_epochs']}")
    worst = max(r["relative"] for r in rows.values())
    if worst > tol or gap > (0.03 if cuda else 0.0):
        raise AssertionError(f"the resumed run differs from the uninterrupted one: weights "
                             f"{worst:.3g} of the distance training moved them (tolerance "
                             f"{tol}), test accuracy gap {gap:.3f}: {result}")
    return result


def _ddp_one_rank(ranks, device, width: int, steps: int, batch: int, seed: int) -> dict:
    """In the one rank of a process group (started by ``spawn_ranks``): the same masked
    steps (the project's eager step, no CUDA graph) run on the plain network and on it set
    up as ``run_training`` sets up a distributed run (BatchNorm over the global batch:
    SyncBatchNorm under NCCL; DistributedDataParallel without buffer broadcasts), in
    float32 (TF32 off) and, on CUDA, under the project's bf16 autocast; the losses, start
    and final states and the rank's agreement go back."""
    import torch
    from torch.nn.parallel import DistributedDataParallel

    from lottery_mia.data import as_model_input
    from lottery_mia.distributed import (all_reduce_sum_, check_ranks_agree,
                                         use_global_batchnorm)
    from lottery_mia.networks import build_model
    from lottery_mia.pruning import get_method
    from lottery_mia.runtime import Runtime
    from lottery_mia.scoring import float32_math
    from lottery_mia.training import _EagerStep, _Totals

    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    cuda = device.type == "cuda"
    out = {"world": ranks.world}
    for amp in ((False, True) if cuda else (False,)):
        rt = Runtime(device, amp=amp, channels_last=cuda, cuda_graphs=False)
        row = {}
        for kind in ("plain", "ddp"):
            torch.manual_seed(seed)
            model = build_model("resnet18", 10, width=width, small_input=True)
            if kind == "ddp":
                use_global_batchnorm(model, nccl=cuda)
            rt.prepare(model)
            mask = get_method("oneshot").mask_at(model, 0.8).to(device)
            mask.apply_(model)
            if kind == "plain":
                row["start"] = _float_state(model)
            forward = None
            if kind == "ddp":
                out["batchnorm"] = type(model.bn1).__name__
                forward = DistributedDataParallel(
                    model, device_ids=[device.index] if cuda else None,
                    broadcast_buffers=False)
            opt = rt.optimizer(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
            totals = _Totals(rt.device)
            step = _EagerStep(model, opt, mask, rt, totals, forward=forward)
            g = torch.Generator().manual_seed(seed + 1)
            losses = []
            model.train()
            with (contextlib.nullcontext() if amp else float32_math()):
                for i in range(steps):
                    xb = as_model_input(torch.randn(batch, 3, 32, 32, generator=g).to(device),
                                        rt.channels_last)
                    yb = torch.randint(0, 10, (batch,), generator=g).to(device)
                    totals.reset()
                    step(xb, yb, 0.05 * (1 - i / steps))
                    if kind == "ddp":
                        all_reduce_sum_(totals.loss_sum)
                    losses.append(float(totals.loss_sum) / batch)
            if kind == "ddp":
                out["ranks"] = check_ranks_agree(model, mask)
                out["wrapped_in"] = type(forward).__name__
                del forward
                use_global_batchnorm(model, on=False)
            row[kind] = {"losses": losses, "state": _float_state(model)}
        out["bf16" if amp else "float32"] = row
    return out


# The plain and the 1-rank DDP run execute the same kernels on the same numbers: float32
# (deterministic cuDNN, no TF32) within 1e-6 of the weights' scale, normally bit for bit;
# bf16 within 1e-2, graph_vs_eager's bounds (bf16 rounding amplifies any last-bit change).
DDP_ONE_TOLERANCE = {"float32": 1e-6, "bf16": 1e-2}


def check_ddp_one_gpu(device: str, smoke: bool) -> dict:
    """The one-GPU baseline of distributed training: ``spawn_ranks`` starts one rank (NCCL
    on CUDA, gloo on the CPU), which trains the same masked steps plainly and through
    DistributedDataParallel (world size 1: the all-reduce of one rank, division by one,
    SyncBatchNorm falling back to BatchNorm); the two runs must agree (bounds above) after
    steps that really moved the weights, and the rank must agree with itself
    (``check_ranks_agree``: pruned weights zero)."""
    import torch

    from lottery_mia.distributed import spawn_ranks

    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", 0)
    width, steps, batch = (8, 4, 16) if smoke else (32, 20, 128)
    lines = []
    got = spawn_ranks(_ddp_one_rank, 1, [str(dev)], (width, steps, batch, 0),
                      out=lines.append)
    out = {"device": str(dev), "steps": steps, "batch": batch, "width": width,
           "wrapped_in": got["wrapped_in"], "batchnorm": got["batchnorm"],
           "ranks": got["ranks"], "tolerance": DDP_ONE_TOLERANCE}
    problems = []
    if got["wrapped_in"] != "DistributedDataParallel" or got["ranks"].get("ranks") != 1:
        problems.append(f"not a 1-rank DDP run: {got['wrapped_in']}, {got['ranks']}")
    for key, tol in DDP_ONE_TOLERANCE.items():
        if key not in got:
            if key == "float32" or dev.type == "cuda":
                problems.append(f"the rank ran no {key} comparison")
            continue
        plain, ddp, start = got[key]["plain"], got[key]["ddp"], got[key]["start"]
        scale = max(float(v.abs().max()) for v in plain["state"].values())
        diff = max(float((plain["state"][k] - ddp["state"][k]).abs().max())
                   for k in plain["state"]) / scale
        moved = max(float((plain["state"][k] - start[k]).abs().max())
                    for k in plain["state"]) / scale
        loss = max(abs(a - b) / max(abs(a), 1e-12)
                   for a, b in zip(plain["losses"], ddp["losses"]))
        out[key] = {"max_weight_diff_over_scale": diff, "max_loss_rel_diff": loss,
                    "max_weight_change_over_scale": moved, "losses_plain": plain["losses"]}
        if not moved > 1e-3:  # the comparison is of real training steps
            problems.append(f"{key}: the steps barely moved the weights ({moved:.2e})")
        if diff > tol or loss > tol:
            problems.append(f"{key}: DDP with one rank differs from the plain run: weights "
                            f"{diff:.2e} of their scale, losses {loss:.2e} (bound {tol})")
    if problems:
        raise AssertionError("; ".join(problems) + f" ({out})")
    return out


FUNCS = {"learns": check_learns, "graph_vs_eager": check_graph_vs_eager,
         "sync_free": check_sync_free, "scoring_precision": check_scoring_precision,
         "decode_matches_cpu": check_decode_matches_cpu, "cuda_resume": check_cuda_resume,
         "ddp_one_gpu": check_ddp_one_gpu, "dense_and_ticket": check_dense_and_ticket,
         "train_throughput": check_train_throughput, "gpu_slots": check_gpu_slots,
         "imagenet_data_path": check_imagenet_data_path, "ddp": check_ddp}
