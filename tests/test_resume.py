"""Resume only what belongs to the job; survive SIGKILL at any point, bit for bit (issue 10)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from lottery_mia.locks import OutputLockedError, output_lock
from lottery_mia.jobs.split import build_membership_split
from lottery_mia.data import DataSpec
from lottery_mia.jobs.train import train_dense

ROOT = Path(__file__).resolve().parents[1]
RECIPE = dict(width=4, epochs=3, batch_size=64, lr=0.05, eval_every=1, num_workers=0)


def split(path: Path, seed: int) -> DataSpec:
    build_membership_split("digits", None, key="datasets.digits.root", download=False,
                           members=300, nonmembers=300, scored_members=None, seed=seed,
                           output=path)
    return DataSpec("digits", "digits", None, str(path))


def dense(data: DataSpec, out: Path, **kw) -> dict:
    return train_dense(data=data, arch="resnet18", recipe=RECIPE, seed=0, rewind_epoch=1,
                       device="cpu", out_model=out / "model.pt", out_init=out / "init.pt",
                       out_rewind=out / "rewind.pt", out_metrics=out / "metrics.json",
                       threads=1, **kw)


def states_equal(a: Path, b: Path) -> bool:
    from lottery_mia.checkpoints import load_checkpoint

    sa = load_checkpoint(a)[1]["state_dict"]
    sb = load_checkpoint(b)[1]["state_dict"]
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def crash_in_epoch(monkeypatch, epoch_call: int):
    from lottery_mia.data import TensorImageSet

    calls = [0]
    original = TensorImageSet.train_batches

    def crashing(self, *a, **kw):
        calls[0] += 1
        if calls[0] == epoch_call:
            raise KeyboardInterrupt  # a killed job
        return original(self, *a, **kw)

    monkeypatch.setattr(TensorImageSet, "train_batches", crashing)


def test_a_changed_split_seed_discards_the_old_resume_state(tmp_path, monkeypatch, capsys):
    """The measured case: dense job killed mid-training, split_seed changed, rerun. The old
    resume.pt must not be used: the new run starts afresh and equals a clean run."""
    table = tmp_path / "run" / "membership.parquet"
    out = tmp_path / "run" / "dense"
    data = split(table, seed=0)
    with monkeypatch.context() as m:
        crash_in_epoch(m, 3)
        with pytest.raises(KeyboardInterrupt):
            dense(data, out)
    assert (out / "resume.pt").exists()
    assert not (out / "model.pt").exists() and not (out / "init.pt").exists()
    data = split(table, seed=1)  # the split is rebuilt in place
    capsys.readouterr()
    metrics = dense(data, out)
    logged = capsys.readouterr().out
    assert f"discarding resume state {out / 'resume.pt'}" in logged
    assert "resuming" not in logged
    assert [h["epoch"] for h in metrics["history"]] == [1, 2, 3]
    clean = tmp_path / "clean"
    dense(split(clean / "membership.parquet", seed=1), clean / "dense")
    assert states_equal(out / "model.pt", clean / "dense" / "model.pt")


def test_the_same_inputs_resume(tmp_path, monkeypatch, capsys):
    table = tmp_path / "membership.parquet"
    data = split(table, seed=0)
    with monkeypatch.context() as m:
        crash_in_epoch(m, 3)
        with pytest.raises(KeyboardInterrupt):
            dense(data, tmp_path / "dense")
    capsys.readouterr()
    dense(data, tmp_path / "dense")
    assert "resuming from" in capsys.readouterr().out


@pytest.mark.parametrize("content", [b"", b"garbage, not a zip", b"PK\x03\x04truncated"])
def test_a_corrupt_resume_state_is_discarded_not_a_permanent_failure(tmp_path, content, capsys):
    data = split(tmp_path / "membership.parquet", seed=0)
    out = tmp_path / "dense"
    out.mkdir()
    (out / "resume.pt").write_bytes(content)
    dense(data, out)
    logged = capsys.readouterr().out
    assert f"discarding resume state {out / 'resume.pt'}" in logged
    assert (out / "model.pt").exists() and not (out / "resume.pt").exists()


def test_a_resume_state_of_other_shapes_is_discarded(tmp_path, monkeypatch, capsys):
    data = split(tmp_path / "membership.parquet", seed=0)
    out = tmp_path / "dense"
    with monkeypatch.context() as m:
        crash_in_epoch(m, 3)
        with pytest.raises(KeyboardInterrupt):
            dense(data, out)
    from lottery_mia.checkpoints import read_tensors, write_tensors

    tensors, meta = read_tensors(out / "resume.pt", "resume state")
    name = next(k for k in tensors if k.startswith("model/"))
    tensors[name] = torch.zeros(1)
    write_tensors(out / "resume.pt", tensors, meta)
    capsys.readouterr()
    dense(data, out)
    assert "discarding resume state" in capsys.readouterr().out


def test_two_trainers_never_share_an_output_folder(tmp_path):
    data = split(tmp_path / "membership.parquet", seed=0)
    out = tmp_path / "dense"
    with output_lock(out):
        with pytest.raises(OutputLockedError, match=str(out)):
            dense(data, out)
    assert not (out / "init.pt").exists()
    dense(data, out)  # the lock is released with its holder
    assert (out / "model.pt").exists()


# --------------------------------------------------------------------------- SIGKILL
DRIVER = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {src!r})
    import torch
    from lottery_mia import checkpoints
    from lottery_mia.data import TensorImageSet
    from lottery_mia.data import DataSpec
    from lottery_mia.jobs.train import train_dense

    point = sys.argv[1]
    kill = lambda: os.kill(os.getpid(), signal.SIGKILL)
    if point == "mid-epoch":  # the second epoch dies after a few steps
        orig = TensorImageSet.train_batches
        calls = [0]
        def batches(self, *a, **kw):
            calls[0] += 1
            for i, b in enumerate(orig(self, *a, **kw)):
                if calls[0] == 2 and i == 2:
                    kill()
                yield b
        TensorImageSet.train_batches = batches
    elif point == "between-epochs":  # dies right after the first resume state is written
        orig = checkpoints.save_resume
        def save_resume(*a, **kw):
            orig(*a, **kw)
            kill()
        import lottery_mia.training as tr
        tr.save_resume = save_resume
    elif point == "during-write":  # dies half-way through writing the second resume state
        import tempfile
        orig_write = checkpoints.atomic_write_bytes
        writes = [0]
        def write(data, path, **kw):
            writes[0] += 1
            if writes[0] == 2:
                fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(str(path)) + ".",
                                           suffix=".tmp", dir=os.path.dirname(str(path)))
                os.write(fd, data[: len(data) // 2])
                kill()
            return orig_write(data, path, **kw)
        checkpoints.atomic_write_bytes = write
    d = {out!r}
    data = DataSpec("digits", "digits", None, {table!r})
    train_dense(data=data, arch="resnet18", recipe={recipe!r}, seed=0, rewind_epoch=1,
                device="cpu", out_model=d + "/model.pt", out_init=d + "/init.pt",
                out_rewind=d + "/rewind.pt", out_metrics=d + "/metrics.json", threads=1)
""")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("reference")
    data = split(d / "membership.parquet", seed=0)
    dense(data, d / "dense")
    return d


@pytest.mark.parametrize("point", ["mid-epoch", "between-epochs", "during-write"])
def test_sigkill_then_rerun_gives_the_bit_identical_model(tmp_path, reference, point):
    table = str(reference / "membership.parquet")
    out = tmp_path / "dense"
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(src=str(ROOT / "src"), out=str(out), table=table,
                                    recipe=RECIPE))
    proc = subprocess.run([sys.executable, str(driver), point], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    # nothing looks finished; at most a resume state (and temporary files) is left
    assert not any((out / f).exists() for f in ("model.pt", "init.pt", "rewind.pt",
                                                 "metrics.json"))
    rerun = subprocess.run([sys.executable, str(driver), "none"], capture_output=True,
                           text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    for f in ("model.pt", "init.pt", "rewind.pt"):
        assert states_equal(out / f, reference / "dense" / f), f
    if point == "mid-epoch" or point == "between-epochs":
        assert "resuming from" in rerun.stdout
    assert not (out / "resume.pt").exists()
    assert not list(out.glob(".*.tmp")), "the rerun removes a killed writer's temporary files"


# --------------------------------------------------------------------------- through Snakemake
def _snakemake_setup(tmp_path, epochs=8):
    import copy

    from conftest import tiny_config, write_config

    cfg = copy.deepcopy(tiny_config())
    cfg["architectures"] = ["resnet18"]
    cfg["transfer"]["architectures"] = ["resnet18"]
    cfg["training"]["digits"]["resnet18"].update(epochs=epochs)
    cfg["references"]["count"] = 0
    write_config(tmp_path, cfg)
    return cfg


def _start(tmp_path, *args):
    from conftest import snakemake_cmd

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = snakemake_cmd() + ["-s", str(ROOT / "Snakefile"), "-d", str(tmp_path),
                             "--configfile", str(tmp_path / "config.yaml"), "--cores", "1",
                             *args, "results/digits/resnet18/seed-0/dense/sparsity-0/model.pt"]
    out = open(tmp_path / "snakemake.out", "w")  # a file: an orphaned job never hits a closed pipe
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)


def _wait_for(path: Path, proc, timeout=300.0):
    import time

    t0 = time.time()
    while not path.exists():
        assert proc.poll() is None, (path.parents[5] / "snakemake.out").read_text()
        assert time.time() - t0 < timeout
        time.sleep(0.05)


def test_snakemake_killed_with_its_job_then_rerun_incomplete_resumes(tmp_path):
    """SIGKILL Snakemake and its training job; --rerun-incomplete resumes from resume.pt and
    the model equals an uninterrupted run bit for bit."""
    cfg = _snakemake_setup(tmp_path)
    dense_dir = tmp_path / "results/digits/resnet18/seed-0/dense/sparsity-0"
    proc = _start(tmp_path)
    _wait_for(dense_dir / "resume.pt", proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (dense_dir / "model.pt").exists()
    from conftest import run_snakemake

    run_snakemake(tmp_path, "--unlock")
    run_snakemake(tmp_path, "--cores", "1", "--rerun-incomplete",
                  "results/digits/resnet18/seed-0/dense/sparsity-0/model.pt")
    log = (tmp_path / "logs/digits/resnet18/seed-0/dense/sparsity-0/train_dense.log").read_text()
    assert "resuming from" in log, log
    ref = tmp_path / "reference"
    data = DataSpec("digits", "digits", None, str(tmp_path / "results/digits/membership.parquet"))
    train_dense(data=data, arch="resnet18", recipe=cfg["training"]["digits"]["resnet18"],
                seed=cfg["replicates"][0], rewind_epoch=cfg["pruning"]["rewind_epoch"], device="cpu",
                out_model=ref / "model.pt", out_init=ref / "init.pt",
                out_rewind=ref / "rewind.pt", out_metrics=ref / "metrics.json", threads=1)
    for f in ("model.pt", "init.pt", "rewind.pt"):
        assert states_equal(dense_dir / f, ref / f), f


def test_an_orphaned_job_and_a_rerun_never_share_a_folder(tmp_path):
    """The measured case: Snakemake killed but not its job, --unlock, rerun. The rerun fails
    at once naming the locked folder; the orphan finishes with every output, init.pt too."""
    _snakemake_setup(tmp_path, epochs=600)  # long enough to outlive the rerun's start
    dense_dir = tmp_path / "results/digits/resnet18/seed-0/dense/sparsity-0"
    proc = _start(tmp_path)
    _wait_for(dense_dir / "resume.pt", proc)
    import psutil

    children = psutil.Process(proc.pid).children(recursive=True)
    os.kill(proc.pid, signal.SIGKILL)  # Snakemake only: its job keeps running
    proc.wait()
    from conftest import run_snakemake

    run_snakemake(tmp_path, "--unlock")
    rerun = run_snakemake(tmp_path, "--cores", "1", "--rerun-incomplete",
                          "--show-failed-logs", "results/digits/resnet18/seed-0/dense/sparsity-0/model.pt",
                          check=False)
    if rerun.returncode == 0:  # the orphan had already finished: nothing to share
        pytest.skip("the orphaned job finished before the rerun started")
    out = rerun.stdout + rerun.stderr
    assert "is locked by pid" in out and "results/digits/resnet18/seed-0/dense/sparsity-0" in out, out[-3000:]
    psutil.wait_procs(children, timeout=300)
    for f in ("model.pt", "init.pt", "rewind.pt", "metrics.json"):
        assert (dense_dir / f).exists(), (f, (tmp_path / "logs/digits/resnet18/seed-0/dense/sparsity-0/train_dense.log")
                                          .read_text(errors="replace")[-3000:])


def test_a_run_with_crops_and_flips_resumes_bit_for_bit(tmp_path, monkeypatch):
    """The augmentation is drawn per epoch from the epoch's seed (on the set's device), so
    a run with crops and flips killed in its third epoch resumes to the same model."""
    recipe = dict(RECIPE, augment={"crop_padding": 2, "hflip": True})
    data = split(tmp_path / "membership.parquet", seed=0)
    ref = tmp_path / "reference"
    train_dense(
        data=data, arch="resnet18", recipe=recipe, seed=0, rewind_epoch=1, device="cpu",
        out_model=ref / "model.pt", out_init=ref / "init.pt", out_rewind=ref / "rewind.pt",
        out_metrics=ref / "metrics.json", threads=1)
    out = tmp_path / "resumed"
    kw = dict(data=data, arch="resnet18", recipe=recipe, seed=0, rewind_epoch=1,
              device="cpu", out_model=out / "model.pt", out_init=out / "init.pt",
              out_rewind=out / "rewind.pt", out_metrics=out / "metrics.json", threads=1)
    with monkeypatch.context() as m:
        crash_in_epoch(m, 3)
        with pytest.raises(KeyboardInterrupt):
            train_dense(**kw)
    assert (out / "resume.pt").exists()
    train_dense(**kw)
    for f in ("model.pt", "init.pt", "rewind.pt"):
        assert states_equal(out / f, ref / f), f
    plain = tmp_path / "plain"
    dense(data, plain)
    assert not states_equal(plain / "model.pt", ref / "model.pt")  # the augmentation acts
