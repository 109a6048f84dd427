"""The training step: one runtime object, sync-free steps, the graphed step vs the eager one."""

from __future__ import annotations

import inspect
import re

import pytest
import torch
import torch.nn.functional as F

from lottery_mia import training
from lottery_mia.networks import build_model
from lottery_mia.runtime import Runtime, make_runtime
from lottery_mia.checkpoints import model_spec
from lottery_mia.training import _EagerStep, _GraphedStep, _Totals, make_step
from lottery_mia.imagesets import batches as batches_mod
from lottery_mia.imagesets import tensor_images as tensor_mod
from lottery_mia.data import Augment, TensorImageSet
from conftest import magnitude_mask

CUDA = torch.cuda.is_available()


def test_runtime_is_decided_once_from_the_device_and_config():
    rt = make_runtime("cpu")
    assert rt == Runtime(torch.device("cpu"), amp=False, channels_last=False, cuda_graphs=False)
    assert make_runtime("cpu", {"cuda_graphs": "auto", "gpu_slots": 3}).cuda_graphs is False
    assert make_runtime("cpu", {"cuda_graphs": False}).cuda_graphs is False
    with pytest.raises(ValueError, match="runtime.cuda_graphs"):
        make_runtime("cpu", {"cuda_graphs": True})
    with pytest.raises(ValueError, match="runtime.cuda_graphs"):
        make_runtime("cpu", {"cuda_graphs": "sometimes"})
    gpu = make_runtime("cuda:1")
    assert (gpu.amp, gpu.amp_dtype, gpu.channels_last, gpu.cuda_graphs) == (
        True, torch.bfloat16, True, True)
    assert make_runtime("cuda:0", {"cuda_graphs": "false"}).cuda_graphs is False
    # where ImageNet's JPEGs are decoded: on the GPU with CUDA unless the block says cpu
    assert (rt.jpeg_decode, gpu.jpeg_decode) == ("cpu", "device")
    assert make_runtime("cuda:0", {"cuda_graphs": "auto", "jpeg_decode": "cpu"}).jpeg_decode \
        == "cpu"
    assert make_runtime("cpu", {"cuda_graphs": "auto", "jpeg_decode": "device"}).jpeg_decode \
        == "device"
    with pytest.raises(ValueError, match="runtime.jpeg_decode"):
        make_runtime("cpu", {"cuda_graphs": "auto", "jpeg_decode": "gpu-please"})
    assert isinstance(rt.optimizer([torch.nn.Parameter(torch.zeros(2))], lr=0.1),
                      torch.optim.SGD)
    assert rt.optimizer([torch.nn.Parameter(torch.zeros(2))], lr=0.1).defaults["foreach"]


def _setup(seed=0, masked=True, device="cpu"):
    torch.manual_seed(seed)
    model = build_model(**model_spec("resnet18", "digits", 4)).to(device)
    mask = magnitude_mask(model, 0.8, prune_fc=True).to(device) if masked else None
    if mask is not None:
        mask.apply_(model)
    rt = make_runtime(device, {"cuda_graphs": False})
    opt = rt.optimizer(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-3,
                       nesterov=True)
    return model, opt, mask, rt


def _batches(n_steps, batch=16, ragged_at=None, device="cpu"):
    g = torch.Generator().manual_seed(1)
    for i in range(n_steps):
        b = batch // 2 + 1 if i == ragged_at else batch
        yield (torch.randn(b, 1, 8, 8, generator=g).to(device),
               torch.randint(0, 10, (b,), generator=g).to(device))


def _run(step_cls, n_steps=6, ragged_at=None, **kw):
    model, opt, mask, rt = _setup()
    model.train()
    totals = _Totals(rt.device)
    step = step_cls(model, opt, mask, rt, totals, **kw)
    losses = []
    for i, (xb, yb) in enumerate(_batches(n_steps, ragged_at=ragged_at)):
        totals.reset()
        step(xb, yb, 0.05 * (1 - i / n_steps))
        losses.append(float(totals.loss_sum) / yb.shape[0])
    return losses, model, mask, step


@pytest.mark.parametrize("ragged_at", [None, 4])
def test_graphed_step_body_matches_the_eager_step(ragged_at):
    """The captured body (run op by op on the CPU) trains as the eager step does: same
    losses and weights to float tolerance, pruned weights exactly zero; a ragged batch
    takes the eager path and the fixed-shape steps go on after it."""
    eager, m_eager, mask, _ = _run(_EagerStep, ragged_at=ragged_at)
    graphed, m_graphed, _, step = _run(_GraphedStep, ragged_at=ragged_at, warmup=2,
                                       capture=False)
    assert step.static_x is not None  # the static path was used after the warm-up
    assert graphed == pytest.approx(eager, rel=1e-4, abs=1e-5)
    ref = m_eager.state_dict()
    for k, v in m_graphed.state_dict().items():
        if v.is_floating_point():
            torch.testing.assert_close(v, ref[k], rtol=1e-4, atol=1e-5, msg=k)
    params = dict(m_graphed.named_parameters())
    for name, t in mask.tensors.items():
        assert torch.all(params[name].detach()[t == 0] == 0), name


@pytest.fixture
def no_host_reads(monkeypatch):
    """Tensor methods that would read a device value on the host raise while active."""

    def boom(name):
        def raise_(*a, **kw):
            raise AssertionError(f"Tensor.{name} called in the step loop (a host sync on CUDA)")
        return raise_

    def arm():
        for name in ("item", "__float__", "__int__", "__bool__", "__index__", "cpu", "tolist",
                     "numpy"):
            monkeypatch.setattr(torch.Tensor, name, boom(name))

    return arm


@pytest.mark.parametrize("cls,kw", [(_EagerStep, {}), (_GraphedStep, dict(warmup=1,
                                                                            capture=False))])
def test_step_never_reads_a_tensor_on_the_host(no_host_reads, cls, kw):
    model, opt, mask, rt = _setup()
    totals = _Totals(rt.device)
    step = cls(model, opt, mask, rt, totals, **kw)
    batches = list(_batches(4, ragged_at=3))
    no_host_reads()
    for i, (xb, yb) in enumerate(batches):
        step(xb, yb, 0.05)


@pytest.fixture
def no_host_traffic(no_host_reads, monkeypatch):
    """``no_host_reads`` plus: no tensor made from host data, no device change, no random
    draw and no generator while active (a CPU stand-in for "no host<->device copy and no
    sync inside a step")."""

    def boom(name):
        def raise_(*a, **kw):
            raise AssertionError(f"{name} called while making a batch (host traffic on CUDA)")
        return raise_

    def arm():
        no_host_reads()
        for name in ("tensor", "as_tensor", "from_numpy", "Generator", "randint", "rand",
                     "randperm", "randn"):
            monkeypatch.setattr(torch, name, boom(f"torch.{name}"))
        for name in ("to", "cuda", "pin_memory"):
            monkeypatch.setattr(torch.Tensor, name, boom(f"Tensor.{name}"))

    return arm


def _cifar_like(device="cpu", n=70):
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, 256, (n, 3, 8, 8), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 10, (n,), generator=g)
    return TensorImageSet(x, y, (0.5,) * 3, (0.25,) * 3, device=device,
                          channels_last=device != "cpu")


@pytest.mark.parametrize("shard", [None, (1, 2)])
def test_the_batch_producer_makes_batches_without_host_traffic(no_host_traffic, shard):
    """The epoch's order, crops and flips are drawn before the epoch; making each batch is
    device work only (gather, crop, flip, normalise), also for a rank's part of a batch."""
    data = _cifar_like()
    plan = data.epoch_plan(16, order_seed=5, augment=Augment(crop_padding=2, hflip=True))
    assert plan.steps == 4 and plan.oy.numel() == plan.flip.numel() == 64
    no_host_traffic()
    batches = [data.plan_batch(plan, step, shard) for step in range(plan.steps)]
    assert all(xb.shape == (16 if shard is None else 8, 3, 8, 8) for xb, _ in batches)


def test_the_producer_guard_catches_a_per_batch_draw(no_host_traffic, monkeypatch):
    """Guards the test above: the producer of old (a CPU generator drawn per batch, then
    copied) is refused by it."""
    def old_style(self, plan, step, shard=None):
        g = torch.Generator().manual_seed(step)
        flip = (torch.rand(4, generator=g) < 0.5).to(self.device)
        return self._prep(self.x[:4]), flip

    monkeypatch.setattr(TensorImageSet, "plan_batch", old_style)
    data = _cifar_like()
    plan = data.epoch_plan(16, 5, Augment(hflip=True))
    no_host_traffic()
    with pytest.raises(AssertionError, match="Generator|rand|Tensor.to"):
        data.plan_batch(plan, 0)


def test_the_epoch_plan_is_seeded_and_ranks_split_the_same_batches():
    data = _cifar_like()
    aug = Augment(crop_padding=2, hflip=True)
    whole = [x for x, _ in data.train_batches(16, 9, aug)]
    again = [x for x, _ in data.train_batches(16, 9, aug)]
    other = [x for x, _ in data.train_batches(16, 10, aug)]
    assert len(whole) == 4 and all(torch.equal(a, b) for a, b in zip(whole, again))
    assert not all(torch.equal(a, b) for a, b in zip(whole, other))
    halves = [list(data.train_batches(16, 9, aug, shard=(r, 2))) for r in range(2)]
    for step, full in enumerate(whole):
        assert torch.equal(torch.cat([halves[0][step][0], halves[1][step][0]]), full)
    tail = [x for x, _ in data.train_batches(16, 9, aug, skip=3)]
    assert len(tail) == 1 and torch.equal(tail[0], whole[3])
    lo, hi = batches_mod.shard_range(70, (1, 3))
    assert (lo, hi) == (23, 46)
    parts = [torch.cat([y for _, y in data.eval_batches(8, shard=(r, 3))]) for r in range(3)]
    assert torch.equal(torch.cat(parts), data.y)


def test_batch_producer_source_has_no_host_traffic():
    """Structural guard of the per-batch code of the in-memory sets."""
    forbidden = re.compile(r"\.item\(|(?<![.\w])(float|int|bool)\(|\.cpu\(|\.tolist\(|"
                           r"\.numpy\(|\.to\(|Generator\(|torch\.(tensor|as_tensor|rand\w*)\(")
    for obj in (TensorImageSet.plan_batch, TensorImageSet._prep, tensor_mod._crop,
                tensor_mod._flip, batches_mod.normalize_batch, batches_mod.batch_part):
        src = inspect.getsource(obj)
        assert not forbidden.search(src), (obj.__qualname__, forbidden.search(src))


def test_cudnn_benchmark_is_on_while_training_on_cuda_only():
    saved = torch.backends.cudnn.benchmark
    try:
        torch.backends.cudnn.benchmark = False
        with training._cudnn_benchmark(True):
            assert torch.backends.cudnn.benchmark
        assert torch.backends.cudnn.benchmark is False
        with training._cudnn_benchmark(False):
            assert torch.backends.cudnn.benchmark is False
    finally:
        torch.backends.cudnn.benchmark = saved
    source = inspect.getsource(_GraphedStep)
    assert 'capture_error_mode="thread_local"' in source
    # warm-up stream, capture and replay on the training device, whichever is current
    assert "with torch.cuda.device(self.rt.device):" in inspect.getsource(_GraphedStep.__call__)
    assert "torch.cuda.Stream(device=dev)" in source


def test_scoring_runs_with_tf32_off_and_restores_it():
    from lottery_mia.scoring import predict_views, tf32_enabled

    seen = []

    class Probe(torch.nn.Module):
        def forward(self, x):
            seen.append(tf32_enabled())
            return x.flatten(1)[:, :3]

    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    try:
        before = (matmul.allow_tf32, cudnn.allow_tf32)
    except RuntimeError:
        pytest.skip("this process set TF32 through the new fp32_precision API")
    try:
        matmul.allow_tf32 = cudnn.allow_tf32 = True
        predict_views(Probe(), _cifar_like(n=10), 4, "cpu", views=2)
        assert seen and not any(seen)
        assert matmul.allow_tf32 and cudnn.allow_tf32  # restored
    finally:
        matmul.allow_tf32, cudnn.allow_tf32 = before


def test_step_loop_source_has_no_host_reads():
    """Structural guard: the per-step code reads nothing back (only the epoch end and the
    progress lines of run_training do)."""
    forbidden = re.compile(r"\.item\(|(?<![.\w])(float|int|bool)\(|\.cpu\(|\.tolist\(|\.numpy\(")
    for obj in (_EagerStep.__call__, _GraphedStep.__call__, _GraphedStep._body,
                _Totals.add, training._graph_sgd_):
        src = inspect.getsource(obj)
        assert not forbidden.search(src), (obj.__qualname__, forbidden.search(src))
    loop = inspect.getsource(training.run_training)
    body = loop[loop.index("train_step(xb, yb, lr)"):loop.index("loss_sum, correct = float(")]
    for line in body.splitlines():
        if "log(" in line or "loss=" in line:  # the progress lines read the sum, by design
            continue
        assert not forbidden.search(line), line


def test_run_training_matches_a_plain_loop_bit_for_bit():
    """The project's step (foreach SGD, on-device sums) is bit for bit torch's default
    single-tensor SGD loop on the CPU."""
    model, _, mask, rt = _setup()
    ref, _, _, _ = _setup()
    opt_ref = torch.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-3,
                              nesterov=True, foreach=False)
    opt = rt.optimizer(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-3,
                       nesterov=True)
    totals = _Totals(rt.device)
    step = make_step(model, opt, mask, rt, totals)
    assert isinstance(step, _EagerStep)
    total = 0.0
    for xb, yb in _batches(5):
        step(xb, yb, 0.05)
        loss = F.cross_entropy(ref(xb).float(), yb)
        opt_ref.zero_grad(set_to_none=True)
        loss.backward()
        mask.mask_grads_(ref)
        opt_ref.step()
        mask.apply_(ref)
        total += float(loss.detach()) * int(yb.shape[0])
    assert float(totals.loss_sum) == total
    for k, v in ref.state_dict().items():
        assert torch.equal(v, model.state_dict()[k]), k


@pytest.mark.skipif(not CUDA, reason="needs a GPU")
def test_cuda_batch_producer_is_sync_free():
    """The epoch plan drawn on the GPU, every batch made under sync_debug_mode("error")."""
    data = _cifar_like("cuda", n=512)
    plan = data.epoch_plan(64, order_seed=1, augment=Augment(crop_padding=4, hflip=True))
    assert plan.perm.device.type == "cuda" and plan.flip.device.type == "cuda"
    data.plan_batch(plan, 0)  # first use of the kernels outside the check
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for step in range(plan.steps):
            xb, yb = data.plan_batch(plan, step)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    torch.cuda.synchronize()
    assert xb.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.skipif(not CUDA, reason="needs a GPU")
@pytest.mark.parametrize("graphs", [False, True])
def test_cuda_step_loop_is_sync_free(graphs):
    """Once warmed up (and, with graphs, captured: capture itself synchronises, once), steps
    of the fixed shape and a ragged one run under sync_debug_mode("error")."""
    model, _, mask, _ = _setup(device="cuda")
    rt = make_runtime("cuda", {"cuda_graphs": graphs})
    rt.prepare(model)
    opt = rt.optimizer(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    totals = _Totals(rt.device)
    step = make_step(model, opt, mask, rt, totals)
    assert isinstance(step, _GraphedStep) == graphs
    batches = list(_batches(12, batch=64, ragged_at=10, device="cuda"))
    for xb, yb in batches[:5]:  # 3 warm-up steps, the capture, one replay
        step(xb, yb, 0.05)
    torch.cuda.synchronize()
    if graphs:
        assert step.graph is not None
    torch.cuda.set_sync_debug_mode("error")
    try:
        for xb, yb in batches[5:]:
            step(xb, yb, 0.04)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    torch.cuda.synchronize()
    assert torch.isfinite(totals.loss_sum)


def test_foreach_sgd_is_torchs_foreach_sgd_and_their_state_dicts_load_in_each_other():
    """runtime.ForeachSGD (the CPU jobs' SGD, which skips torch's lazy torch._dynamo import)
    updates bit for bit as torch.optim.SGD(foreach=True), also across a state-dict round
    trip between the two classes (a resume file written by either)."""
    from lottery_mia.runtime import ForeachSGD

    def steps(model, opt, n, seed):
        gen = torch.Generator().manual_seed(seed)
        for i in range(n):
            x = torch.randn(16, 1, 8, 8, generator=gen)
            y = torch.randint(0, 10, (16,), generator=gen)
            for group in opt.param_groups:
                group["lr"] = 0.05 * (1 - i / (2 * n))
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()

    sgd = dict(lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
    ours, theirs = _setup()[0], _setup()[0]
    opt_ours, opt_theirs = ForeachSGD(ours.parameters(), **sgd), \
        torch.optim.SGD(theirs.parameters(), foreach=True, **sgd)
    steps(ours, opt_ours, 4, 0)
    steps(theirs, opt_theirs, 4, 0)
    # swap the optimizer states: each continues from the other's state dict
    state_ours, state_theirs = opt_ours.state_dict(), opt_theirs.state_dict()
    opt_ours, opt_theirs = ForeachSGD(ours.parameters(), **sgd), \
        torch.optim.SGD(theirs.parameters(), foreach=True, **sgd)
    opt_ours.load_state_dict(state_theirs)
    opt_theirs.load_state_dict(state_ours)
    steps(ours, opt_ours, 4, 1)
    steps(theirs, opt_theirs, 4, 1)
    for k, v in theirs.state_dict().items():
        assert torch.equal(v, ours.state_dict()[k]), k
    for p, q in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(opt_ours.state[p]["momentum_buffer"],
                           opt_theirs.state[q]["momentum_buffer"])
