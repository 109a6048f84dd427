"""The training step: one runtime object, sync-free steps, the graphed step vs the eager one."""

from __future__ import annotations

import inspect
import re

import pytest
import torch
import torch.nn.functional as F

from lottery_mia import training
from lottery_mia.masks import Mask
from lottery_mia.models import build_model
from lottery_mia.runtime import Runtime, make_runtime
from lottery_mia.checkpoints import model_spec
from lottery_mia.training import _EagerStep, _GraphedStep, _Totals, make_step
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
