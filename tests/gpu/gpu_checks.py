"""The GPU checks of the project (run by benchmarks/gpu_suite.py, each in a process of its
own, and by tests/gpu/test_gpu_checks.py under pytest, skipped without a GPU). Each check is
a function ``check_<name>(device, smoke) -> dict`` of numbers that raises AssertionError when
the check fails and :class:`Skip` when it does not apply; benchmarks/gpu_suite.py's doc says
what each one checks. Needs torch (and numpy); not pytest, not pydantic."""

from __future__ import annotations



import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for _p in (ROOT / "src", ROOT / "benchmarks"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

# name, what it checks, time limit (s) on one H200
CHECKS = [
    ("sync_free", "producer and step under sync_debug_mode('error'), eager and graphed", 60),
    ("graph_vs_eager", "CUDA-graph replay == its body run eagerly (float32: 1e-6)", 40),
    ("scoring_precision", "TF32 off: float32 logits vs float64 reference (<= 1e-4 of RMS)", 30),
    ("train_throughput", "CIFAR ResNet18 w64 img/s at batch 128 and 512, ratio to bare", 60),
    ("imagenet_data_path", "GPU-decoded JPEGs feeding ResNet50: img/s, ratio to synthetic", 100),
    ("gpu_slots", "2 and 3 jobs sharing one GPU via gpu_slots: aggregate img/s", 70),
    ("dense_and_ticket", "dense + 80% ticket on the claimed GPU: bf16/NHWC, mask holds", 40),
    ("ddp", "2-GPU DistributedDataParallel dense + ticket (skipped with 1 GPU)", 60),
]


class Skip(Exception):
    """A check that does not apply here (the reason is its message)."""


def _sync(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _cifar_set(n, size, device, channels_last, seed=0, classes=10):
    import numpy as np

    from lottery_mia.data import TensorImageSet

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8)
    y = rng.integers(0, classes, n)
    return TensorImageSet(x, y, [0.5] * 3, [0.25] * 3, device=device,
                          channels_last=channels_last)


# --------------------------------------------------------------------------- checks
def check_sync_free(device: str, smoke: bool) -> dict:
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

    if importlib.util.find_spec("pytest") is None:
        out["pytest_cuda_tests"] = "pytest not installed: skipped"
    else:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", str(tests),
                               "-k", "cuda", "-p", "no:cacheprovider"],
                              capture_output=True, text=True, timeout=40,
                              cwd=str(ROOT))
        out["pytest_cuda_tests"] = {"returncode": proc.returncode,
                                    "summary": (proc.stdout.strip().splitlines() or [""])[-1]}
        if proc.returncode != 0:
            out["pytest_output"] = proc.stdout[-3000:]
            raise AssertionError("the CUDA tests of tests/test_runtime.py failed")
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
            model = rt.prepare(build_model("resnet18", 10, width=32, small_input=True))
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
            state = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
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
    model = build_model("resnet18", 100, width=64, small_input=True)
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
    import train_throughput as tt

    from lottery_mia.runtime import make_runtime

    rt = make_runtime(device)
    width, steps, epochs = (16, 2, 2) if smoke else (64, 50, 3)
    rows = []
    for batch in ((32,) if smoke else (128, 512)):
        flops = tt.flops_per_step(width, 32, batch, device, rt)
        bare = tt.measure_bare(width, 32, batch, steps, epochs - 1, device)
        proj = tt.measure_project(width, 32, batch, steps, epochs, device)
        rows.append({"batch": batch, "images_per_s": round(proj["images_per_s"], 1),
                     "bare_images_per_s": round(bare["images_per_s"], 1),
                     "ratio_vs_bare": round(proj["images_per_s"] / bare["images_per_s"], 3),
                     "tflop_s": round(flops / batch * proj["images_per_s"] / 1e12, 2)})
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
    import torch

    from lottery_mia.devices import claim_device
    from lottery_mia.networks import build_model
    from lottery_mia.recipe import Recipe
    from lottery_mia.runtime import make_runtime
    from lottery_mia.training import run_training

    try:
        claim = claim_device("cuda" if device == "cuda" else "cpu", lock_dir=lock_dir,
                             slots=n_jobs, log=lambda m: None)
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
    import multiprocessing as mp

    import torch

    if torch.device(device).type != "cuda" and not smoke:
        raise Skip("needs CUDA")
    out = {"target_aggregate_images_per_s": 40000}
    for n_jobs in (2, 3):
        ctx = mp.get_context("spawn")
        queue, barrier = ctx.Queue(), ctx.Barrier(n_jobs)
        with tempfile.TemporaryDirectory(prefix="lottery-mia-slots-") as tmp:
            lock_dir = Path(tmp) / "locks"
            env_before = os.environ.get("LOTTERY_MIA_SIMULATED_GPUS")
            os.environ["LOTTERY_MIA_SIMULATED_GPUS"] = "1"  # one GPU: the jobs must share it
            try:
                procs = [ctx.Process(target=_slot_job, args=(k, n_jobs, str(lock_dir), barrier,
                                                             queue, smoke, device))
                         for k in range(n_jobs)]
                for p in procs:
                    p.start()
                rows = [queue.get(timeout=120) for _ in procs]
                for p in procs:
                    p.join(timeout=30)
            finally:
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
        if device == "cuda" and len(set(locks)) != n_jobs:
            raise AssertionError(f"the {n_jobs} jobs did not hold one slot lock each: {locks}")
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
        with mp.get_context("spawn").Pool(max(1, min(cores, 16))) as pool:
            pool.map(_write_jpegs, chunks)
        out["jpeg_write_s"] = round(time.time() - t0, 1)
        info_mean, info_std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
        rt = make_runtime(device)
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
    with claim_device("cuda" if cuda else "cpu", log=lambda m: None) as claim:
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
        t0 = time.time()
        run_training(model, train, test, recipe, seed=0, device=dev)
        _sync(dev)
        dense_s = time.time() - t0
        hook.remove()
        if cuda and ("torch.bfloat16", True) not in seen:
            raise AssertionError(f"expected bf16 autocast on channels_last, saw {seen}")
        mask = get_method("oneshot").mask_at(model, 0.8)
        ticket = build_model("resnet18", 10, width=width, in_channels=3, small_input=True)
        ticket.load_state_dict(w0)
        mask.apply_(ticket)
        t0 = time.time()
        run_training(ticket, train, test, recipe, seed=0, device=dev, mask=mask)
        _sync(dev)
        ticket_s = time.time() - t0
        sp = model_sparsity(ticket.cpu())["sparsity_prunable"]
        params = dict(ticket.named_parameters())
        revived = sum(int((params[k].detach()[t.cpu() == 0] != 0).sum())
                      for k, t in mask.tensors.items())
        out.update(dense_images_per_s=round(images * 2 / dense_s, 1),
                   ticket_images_per_s=round(images * 2 / ticket_s, 1),
                   ticket_sparsity=sp, pruned_nonzero=revived, conv1_seen=sorted(seen))
        if cuda:
            out["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated(dev) / 2**30, 2)
        if abs(sp - 0.8) > 1e-4 or revived:
            raise AssertionError(f"ticket sparsity {sp}, {revived} pruned weights not zero")
    return out


def check_ddp(device: str, smoke: bool) -> dict:
    import torch

    from lottery_mia.data import DataSpec
    from lottery_mia.jobs.split import build_membership_split
    from lottery_mia.jobs.train import train_dense, train_ticket
    from lottery_mia.masks import Mask
    from lottery_mia.pruning import get_method

    cuda = torch.device(device).type == "cuda"
    if cuda and torch.cuda.device_count() < 2:
        raise Skip(f"{torch.cuda.device_count()} GPU visible: DDP needs 2")
    if not cuda and not smoke:
        raise Skip("needs CUDA")
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


FUNCS = {"sync_free": check_sync_free, "graph_vs_eager": check_graph_vs_eager,
         "scoring_precision": check_scoring_precision,
         "train_throughput": check_train_throughput,
         "imagenet_data_path": check_imagenet_data_path, "gpu_slots": check_gpu_slots,
         "dense_and_ticket": check_dense_and_ticket, "ddp": check_ddp}
