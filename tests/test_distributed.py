"""One training job on several processes (DistributedDataParallel), tested on the CPU with
gloo and 2 ranks: BatchNorm over the global batch, a 2-rank run equal to a 1-rank run,
masks held on every rank, resume after SIGKILL, ranks that die with their job, and the
multi-device GPU claim (simulated devices)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import SRC
from lottery_mia.data import DataSpec
from lottery_mia.devices import claim_device
from lottery_mia.distributed import GlobalBatchNorm2d, spawn_ranks, use_global_batchnorm
from lottery_mia.jobs.split import build_membership_split
from lottery_mia.jobs.train import train_dense, train_ticket

# a short run: 300 members, 4 global batches of 64 per epoch, crops and flips on
RECIPE = dict(width=4, epochs=2, batch_size=64, lr=0.01, eval_every=1, num_workers=0,
              augment={"crop_padding": 1, "hflip": True})
# Tolerance of "a 2-rank run equals a 1-rank run up to floating-point reduction order".
# Measured on this recipe (2-core x86 CPU, float32, with oneDNN's AVX-512 kernels and with
# ONEDNN_MAX_CPU_ISA=AVX2): two 1-rank runs that differ only in the reduction order of their
# convolutions (1 vs 2 threads) end 3.6e-7 (AVX-512) / 4.8e-7 (AVX2) apart (max abs over the
# weights, which are O(1)); the 2-rank run ends as far from the 1-rank one. 1e-5 leaves a
# 20x margin over that noise, while a 2-rank run with per-rank BatchNorm (statistics of
# each rank's half-batch) ends far outside it (checked below), and a wrong sample order or
# split differs at that scale too. Training is chaotic: at lr 0.05 the same 2-rank run ended
# 1.9e-6 from the 1-rank one with AVX-512 kernels but 4.3e-3 with AVX2 ones (ReLU and
# max-pool switches amplify reduction-order noise), and at lr 0.02 even two 1-rank runs
# ended 2.6e-5 apart; so the comparison is made on a short run at a small learning rate.
ATOL = RTOL = 1e-5


def _split(d: Path) -> DataSpec:
    build_membership_split("digits", None, key="datasets.digits.root", download=False,
                           members=300, nonmembers=300, scored_members=None, seed=0,
                           output=d / "membership.parquet")
    return DataSpec("digits", "digits", None, str(d / "membership.parquet"))


def _dense(data: DataSpec, out: Path, gpus: int, recipe=RECIPE, **kw) -> dict:
    return train_dense(data=data, arch="resnet18", recipe=recipe, seed=0, rewind_epoch=1,
                       device="cpu", out_model=out / "model.pt", out_init=out / "init.pt",
                       out_rewind=out / "rewind.pt", out_metrics=out / "metrics.json",
                       threads=2, gpus=gpus, **kw)


def _state(path: Path) -> dict:
    from lottery_mia.checkpoints import load_checkpoint

    return load_checkpoint(path)[1]["state_dict"]


def _max_diff(a: dict, b: dict) -> float:
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a
               if a[k].is_floating_point())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same dense job on 1 and on 2 ranks."""
    d = tmp_path_factory.mktemp("ddp")
    data = _split(d)
    one = _dense(data, d / "one", gpus=1)
    two = _dense(data, d / "two", gpus=2)
    return {"dir": d, "data": data, "one": one, "two": two}


# --------------------------------------------------------------------------- BatchNorm
def _bn_rank(ranks, device, x, w_out):
    """One rank: its half of the batch through GlobalBatchNorm2d, forward and backward."""
    import torch.distributed as dist

    torch.manual_seed(0)
    bn = use_global_batchnorm(torch.nn.BatchNorm2d(x.shape[1]))
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    half = x.shape[0] // ranks.world
    part = slice(ranks.rank * half, (ranks.rank + 1) * half)
    xi = x[part].clone().requires_grad_(True)
    y = bn(xi)
    (y * w_out[part]).sum().backward()
    grads = [bn.weight.grad.clone(), bn.bias.grad.clone()]
    for g in grads:
        dist.all_reduce(g)  # what DDP does with parameter gradients (then / world)
    ys = [torch.empty_like(y) for _ in range(ranks.world)]
    gx = [torch.empty_like(xi.grad) for _ in range(ranks.world)]
    dist.all_gather(ys, y.detach())
    dist.all_gather(gx, xi.grad)
    return {"y": torch.cat(ys), "x_grad": torch.cat(gx), "weight_grad": grads[0],
            "bias_grad": grads[1], "running_mean": bn.running_mean.clone(),
            "running_var": bn.running_var.clone(), "tracked": int(bn.num_batches_tracked)}


def test_global_batchnorm_is_batchnorm_over_the_whole_batch():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 3, 5, 5, generator=g) * 2 + 1
    w_out = torch.randn(8, 3, 5, 5, generator=g)
    got = spawn_ranks(_bn_rank, 2, ["cpu", "cpu"], (x, w_out))
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    xr = x.clone().requires_grad_(True)
    y = bn(xr)
    (y * w_out).sum().backward()
    close = dict(rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got["y"], y.detach(), **close)
    torch.testing.assert_close(got["x_grad"], xr.grad, **close)
    torch.testing.assert_close(got["weight_grad"], bn.weight.grad, **close)
    torch.testing.assert_close(got["bias_grad"], bn.bias.grad, **close)
    torch.testing.assert_close(got["running_mean"], bn.running_mean, **close)
    torch.testing.assert_close(got["running_var"], bn.running_var, **close)
    assert got["tracked"] == 1
    # outside a process group, or in eval mode, it is plain BatchNorm
    plain = use_global_batchnorm(torch.nn.Sequential(torch.nn.BatchNorm2d(3)))
    assert type(plain[0]) is GlobalBatchNorm2d
    assert torch.equal(plain(x), F.batch_norm(x, None, None, training=True))
    assert type(use_global_batchnorm(plain, on=False)[0]) is torch.nn.BatchNorm2d


def test_under_nccl_the_global_batchnorm_is_pytorchs_syncbatchnorm():
    """On CUDA (NCCL) the ranks use nn.SyncBatchNorm (one fused collective per layer);
    the same parameters and buffers, and back to BatchNorm2d afterwards; in eval mode it
    is plain BatchNorm (SyncBatchNorm's training forward needs CUDA, not run here)."""
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = [id(p) for p in model.parameters()]
    use_global_batchnorm(model, nccl=True)
    assert type(model[1]) is torch.nn.SyncBatchNorm and model[1].process_group is None
    assert [id(p) for p in model.parameters()] == params  # the optimizer's parameters
    model.eval()
    x = torch.randn(2, 3, 6, 6)
    ref = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).eval()
    ref.load_state_dict(before)
    assert torch.equal(model(x), ref(x))
    use_global_batchnorm(model, on=False)
    assert type(model[1]) is torch.nn.BatchNorm2d and "process_group" not in vars(model[1])
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


# --------------------------------------------------------------------------- 2 ranks = 1
def _per_rank_batchnorm_run(data: DataSpec) -> dict:
    """The control: the same run with each global batch's halves normalised by their own
    statistics (what per-rank BatchNorm does), gradients averaged, in one process."""
    from lottery_mia.checkpoints import model_spec
    from lottery_mia.data import member_and_test_sets
    from lottery_mia.networks import build_model
    from lottery_mia.recipe import Recipe
    from lottery_mia.runtime import make_runtime

    rec = Recipe.from_dict(RECIPE)
    torch.manual_seed(0)
    model = build_model(**model_spec("resnet18", "digits", rec.width))
    train_set, _ = member_and_test_sets(data, rec, "cpu")
    opt = make_runtime("cpu").optimizer(model.parameters(), lr=rec.lr, momentum=rec.momentum,
                                        weight_decay=rec.weight_decay, nesterov=rec.nesterov)
    steps = len(train_set) // rec.batch_size
    for epoch in range(rec.epochs):
        model.train()
        for step, (xb, yb) in enumerate(train_set.train_batches(rec.batch_size,
                                                                epoch, rec.augment)):
            for group in opt.param_groups:
                group["lr"] = rec.lr_at(epoch + step / steps)
            opt.zero_grad()
            half = rec.batch_size // 2
            loss = sum(F.cross_entropy(model(xb[i * half:(i + 1) * half]),
                                       yb[i * half:(i + 1) * half]) for i in range(2)) / 2
            loss.backward()
            opt.step()
    return {k: v.detach() for k, v in model.state_dict().items()}


def test_two_ranks_train_as_one_process_does(runs):
    one = _state(runs["dir"] / "one" / "model.pt")
    two = _state(runs["dir"] / "two" / "model.pt")
    assert one.keys() == two.keys()
    for k in one:
        if one[k].is_floating_point():
            torch.testing.assert_close(two[k], one[k], rtol=RTOL, atol=ATOL, msg=k)
        else:
            assert torch.equal(two[k], one[k]), k  # num_batches_tracked: the same steps
    for f in ("init.pt", "rewind.pt"):
        a, b = _state(runs["dir"] / "one" / f), _state(runs["dir"] / "two" / f)
        assert _max_diff(a, b) <= ATOL, f
    m1, m2 = runs["one"], runs["two"]
    assert m2["distributed"] == {"ranks": 2, "ranks_identical": True,
                                 "pruned_nonzero_any_rank": 0}
    assert "distributed" not in m1 and m2["device"] == "cpu,cpu"
    assert m1["steps_per_epoch"] == m2["steps_per_epoch"] == 4
    for h1, h2 in zip(m1["history"], m2["history"]):  # totals over every rank's part
        assert h1["train_loss"] == pytest.approx(h2["train_loss"], rel=1e-5)
        assert h1["test_acc"] == pytest.approx(h2["test_acc"], abs=1 / 300 + 1e-9)
    assert json.loads((runs["dir"] / "two" / "metrics.json").read_text()) == m2
    assert not (runs["dir"] / "two" / "resume.pt").exists()
    # the control: per-rank BatchNorm is another network function, far outside the tolerance
    control = _per_rank_batchnorm_run(runs["data"])
    assert _max_diff(control, one) > 100 * ATOL


def test_masks_hold_on_every_rank(runs, tmp_path):
    from conftest import magnitude_mask
    from lottery_mia.checkpoints import load_checkpoint

    d = runs["dir"] / "one"
    model, _ = load_checkpoint(d / "model.pt")
    magnitude_mask(model, 0.8).save(tmp_path / "mask.pt")
    kw = dict(data=runs["data"], arch="resnet18", recipe=dict(RECIPE, weight_decay=5e-3),
              seed=0, sparsity=0.8, device="cpu", mask_path=tmp_path / "mask.pt",
              start_path=d / "rewind.pt", rewind_epoch=1, threads=2)
    m2 = train_ticket(out_model=tmp_path / "t2.pt", out_metrics=tmp_path / "t2.json", gpus=2,
                      **kw)
    m1 = train_ticket(out_model=tmp_path / "t1.pt", out_metrics=tmp_path / "t1.json", **kw)
    assert m1["test_acc"] == pytest.approx(m2["test_acc"], abs=1 / 300 + 1e-9)
    assert m2["distributed"]["ranks_identical"] and m2["distributed"]["ranks"] == 2
    assert m2["distributed"]["pruned_nonzero_any_rank"] == 0
    assert m2["measured_sparsity_prunable"] == pytest.approx(0.8, abs=1e-4)
    from lottery_mia.masks import Mask

    mask = Mask.load(tmp_path / "mask.pt")
    two, one = _state(tmp_path / "t2.pt"), _state(tmp_path / "t1.pt")
    for name, t in mask.tensors.items():
        assert torch.all(two[name][t == 0] == 0), name
    assert _max_diff(two, one) <= ATOL


def test_a_batch_that_does_not_split_over_the_ranks_is_refused(runs, tmp_path):
    with pytest.raises(ValueError, match="training.batch_size: 63 does not split evenly"):
        _dense(runs["data"], tmp_path, gpus=2, recipe=dict(RECIPE, batch_size=63))
    assert not (tmp_path / "model.pt").exists()
    from lottery_mia.recipe import Recipe
    from lottery_mia.training import _check_distributed
    from lottery_mia.distributed import Ranks

    with pytest.raises(ValueError, match="fewer than one batch"):
        _check_distributed(Recipe.from_dict(dict(RECIPE, batch_size=64)), 40, Ranks(0, 2))


# --------------------------------------------------------------------------- SIGKILL
DRIVER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {src!r})
    print("driver main ran", flush=True)
    from lottery_mia.data import DataSpec
    from lottery_mia.jobs.train import train_dense

    d = {out!r}
    data = DataSpec("digits", "digits", None, {table!r})
    train_dense(data=data, arch="resnet18", recipe={recipe!r}, seed=0, rewind_epoch=1,
                device="cpu", out_model=d + "/model.pt", out_init=d + "/init.pt",
                out_rewind=d + "/rewind.pt", out_metrics=d + "/metrics.json", threads=2,
                gpus=2)
""")  # no __main__ guard, as Snakemake's scripts: the ranks must not run it again


def test_a_killed_distributed_job_takes_its_ranks_and_resumes_bit_for_bit(runs, tmp_path):
    """SIGKILL the job's process (not its ranks) once the first resume state is written:
    the ranks die with it; a rerun resumes and ends bit-identical to an uninterrupted
    2-rank run."""
    import psutil

    recipe = dict(RECIPE, epochs=4)
    reference = tmp_path / "reference"
    _dense(runs["data"], reference, gpus=2, recipe=recipe)
    out = tmp_path / "killed"
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(src=str(SRC), out=str(out), table=runs["data"].membership,
                                    recipe=recipe))
    log = open(tmp_path / "driver.log", "w")
    proc = subprocess.Popen([sys.executable, str(driver)], stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    t0 = time.time()
    try:
        while not (out / "resume.pt").exists():
            assert proc.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
            assert time.time() - t0 < 120, "no resume state after 120 s"
            time.sleep(0.005)
        ranks = psutil.Process(proc.pid).children(recursive=True)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    gone, alive = psutil.wait_procs(ranks, timeout=30)
    assert not alive, f"ranks outlived their job: {alive}"
    assert not (out / "model.pt").exists(), "the job finished before it was killed"
    text = (tmp_path / "driver.log").read_text()
    assert text.count("driver main ran") == 1, text  # the ranks did not rerun the script
    rerun = subprocess.run([sys.executable, str(driver)], capture_output=True, text=True,
                           timeout=300)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "resuming from" in rerun.stdout, rerun.stdout[-3000:]
    assert rerun.stdout.count("driver main ran") == 1
    for f in ("model.pt", "init.pt", "rewind.pt"):
        a, b = _state(out / f), _state(reference / f)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), f
    assert not (out / "resume.pt").exists()


# --------------------------------------------------------------------------- ranks
def _failing_rank(ranks, device):
    import torch.distributed as dist

    print(f"rank {ranks.rank} says hello", flush=True)
    dist.barrier()  # both have spoken
    if ranks.rank == 1:
        raise ValueError("rank 1 cannot go on")
    dist.barrier()  # rank 0 waits for rank 1, which never comes
    return "unreachable"


def test_a_failing_rank_stops_the_job_with_its_error_and_rank_0_logs(capsys):
    from lottery_mia.distributed import RankFailed

    with pytest.raises(RankFailed, match="rank 1 cannot go on") as err:
        spawn_ranks(_failing_rank, 2, ["cpu", "cpu"])
    import re

    first = re.search(r"rank \d+ (failed|was killed)", str(err.value)).group(0)
    assert first == "rank 1 failed", str(err.value)[:500]  # the root cause comes first
    out = capsys.readouterr().out
    assert "rank 0 says hello" in out and "rank 1 says hello" not in out


# --------------------------------------------------------------------------- devices
@pytest.fixture
def gpu_env(monkeypatch, tmp_path):
    for key in ("CUDA_VISIBLE_DEVICES", "LOTTERY_MIA_SIMULATED_GPUS", "LOTTERY_MIA_GPU_SLOTS",
                "SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID"):
        monkeypatch.delenv(key, raising=False)
    locks = tmp_path / "locks"
    monkeypatch.setenv("LOTTERY_MIA_GPU_LOCK_DIR", str(locks))
    return locks


def test_a_multi_gpu_claim_takes_different_devices_all_or_none(gpu_env):
    quiet = dict(log=lambda m: None, poll_s=0.01)
    with claim_device("cuda", visible_count=4, count=2, **quiet) as a:
        assert a.devices == ["cuda:0", "cuda:1"] and a.indices == [0, 1]
        assert a.lock_path.name == "gpu-0.lock" and a.more[0].lock_path.name == "gpu-1.lock"
        with claim_device("cuda", visible_count=4, count=2, **quiet) as b:
            assert b.devices == ["cuda:2", "cuda:3"]
            with pytest.raises(TimeoutError, match="needs 2 different devices"):
                claim_device("cuda", visible_count=4, count=2, timeout_s=0.05, **quiet)
            # all or none: the failed claim holds nothing, a single GPU is still refused
            with pytest.raises(TimeoutError):
                claim_device("cuda", visible_count=4, timeout_s=0.05, **quiet)
    with claim_device("cuda", visible_count=2, count=2, slots=2, **quiet) as a:
        with claim_device("cuda", visible_count=2, count=2, slots=2, **quiet) as b:
            assert b.devices == ["cuda:0", "cuda:1"]  # the second slots of both devices
            assert b.lock_path.name == "gpu-0.slot1.lock"
    with claim_device("cuda", visible_count=2, count=2, **quiet) as again:
        assert again.devices == ["cuda:0", "cuda:1"]  # everything was released
    assert claim_device("cpu", count=3).devices == ["cpu"] * 3
    assert claim_device("auto", visible_count=0, count=2).devices == ["cpu", "cpu"]
    with pytest.raises(RuntimeError, match="gpus=3 but only 2"):
        claim_device("cuda", visible_count=2, count=3, **quiet)
    with pytest.raises(ValueError, match="names one device"):
        claim_device("cuda:1", visible_count=2, count=2, **quiet)


def test_a_scheduler_assignment_must_list_enough_devices(gpu_env, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    claim = claim_device("cuda", visible_count=2, count=2, log=lambda m: None)
    assert claim.devices == ["cuda:0", "cuda:1"] and claim.lock_path is None
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    with pytest.raises(RuntimeError, match="gpus=2"):
        claim_device("cuda", visible_count=2, count=2, log=lambda m: None)
