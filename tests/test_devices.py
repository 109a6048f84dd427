"""Tests for :mod:`lottery_mia.devices`: concurrent jobs never share a GPU.

No GPU is needed: ``LOTTERY_MIA_SIMULATED_GPUS`` / ``visible_count`` stand in
for real devices, and the locking under test is the real ``flock``. The
concurrency tests use separate worker processes (as Snakemake jobs are), and
fail if claiming did not lock (every worker would get index 0).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

# The source tree next to this file, for this process and (via PYTHONPATH) for
# the workers alike, whether or not the package is installed.
SRC = Path(__file__).resolve().parents[1] / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))
from lottery_mia.devices import DeviceClaim, claim_device  # noqa: E402

ENV_KEYS = ("CUDA_VISIBLE_DEVICES", "LOTTERY_MIA_SIMULATED_GPUS", "LOTTERY_MIA_GPU_LOCK_DIR",
            "LOTTERY_MIA_GPU_SLOTS", "SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID")

# A worker: claim a (simulated) GPU, write its index to <out>/claimed-<name>,
# then hold the claim until <out>/release-<name> or <out>/release-all exists
# (the barrier: the test lets go only once every worker has claimed).
WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from lottery_mia.devices import claim_device

    out, name = Path(sys.argv[1]), sys.argv[2]
    claim = claim_device("cuda", poll_s=0.05, timeout_s=20,
                         log=lambda m: print(m, flush=True))
    tmp = out / f".claimed-{name}"
    tmp.write_text(str(claim.index))
    tmp.rename(out / f"claimed-{name}")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if (out / f"release-{name}").exists() or (out / "release-all").exists():
            break
        time.sleep(0.02)
    claim.release()
    """
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ENV_KEYS:
        monkeypatch.delenv(key, raising=False)


def _start_worker(out: Path, name: str, n_gpus: int, lock_dir: Path,
                  slots: int = 1) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")])),
        LOTTERY_MIA_SIMULATED_GPUS=str(n_gpus),
        LOTTERY_MIA_GPU_LOCK_DIR=str(lock_dir),
        LOTTERY_MIA_GPU_SLOTS=str(slots),
    )
    log = open(out / f"log-{name}", "w")
    with log:
        return subprocess.Popen(
            [sys.executable, "-c", WORKER, str(out), name],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )


def _wait_for(predicate, what: str, procs=(), timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        for p in procs:
            if p.poll() not in (None, 0):
                raise AssertionError(f"worker exited with {p.returncode} while waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _claimed(out: Path) -> dict[str, int]:
    return {p.name.removeprefix("claimed-"): int(p.read_text()) for p in out.glob("claimed-*")}


def _finish(procs: list[subprocess.Popen], out: Path) -> None:
    (out / "release-all").touch()
    for p in procs:
        try:
            rc = p.wait(timeout=20)
        finally:
            if p.poll() is None:
                p.kill()
        logs = "\n".join(f.read_text() for f in sorted(out.glob("log-*")))
        assert rc == 0, f"worker failed:\n{logs}"


def test_concurrent_workers_get_distinct_devices(tmp_path: Path) -> None:
    n = 4
    out, locks = tmp_path / "out", tmp_path / "locks"
    out.mkdir()
    procs = [_start_worker(out, f"w{i}", n, locks) for i in range(n)]
    try:
        _wait_for(lambda: len(_claimed(out)) == n, f"{n} claims", procs)
        # All n hold their claim at this moment (none has been released).
        assert sorted(_claimed(out).values()) == list(range(n))
    finally:
        _finish(procs, out)


def test_extra_worker_waits_for_a_released_device(tmp_path: Path) -> None:
    n = 2
    out, locks = tmp_path / "out", tmp_path / "locks"
    out.mkdir()
    procs = [_start_worker(out, f"w{i}", n, locks) for i in range(n)]
    try:
        _wait_for(lambda: len(_claimed(out)) == n, f"{n} claims", procs)
        held = _claimed(out)
        assert sorted(held.values()) == list(range(n))

        procs.append(_start_worker(out, "extra", n, locks))
        _wait_for(lambda: "busy" in (out / "log-extra").read_text(), "the extra worker to wait", procs)
        time.sleep(0.3)  # several polls: it must still be waiting
        assert "extra" not in _claimed(out)

        (out / "release-w1").touch()
        _wait_for(lambda: "extra" in _claimed(out), "the extra worker's claim", procs)
        assert _claimed(out)["extra"] == held["w1"]
    finally:
        _finish(procs, out)


def test_killed_holder_frees_its_device(tmp_path: Path) -> None:
    out, locks = tmp_path / "out", tmp_path / "locks"
    out.mkdir()
    holder = _start_worker(out, "holder", 1, locks)
    try:
        _wait_for(lambda: "holder" in _claimed(out), "the holder's claim", [holder])
        with pytest.raises(TimeoutError, match="no free GPU"):
            claim_device("cuda", visible_count=1, lock_dir=locks, timeout_s=0.2, poll_s=0.05, log=lambda m: None)
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    finally:
        if holder.poll() is None:
            holder.kill()
    start = time.monotonic()
    with claim_device("cuda", visible_count=1, lock_dir=locks, timeout_s=5, poll_s=0.05, log=lambda m: None) as claim:
        assert (claim.device, claim.index) == ("cuda:0", 0)
        assert claim.lock_path == locks / "gpu-0.lock"
    assert time.monotonic() - start < 2


def test_claims_in_one_process_do_not_share(tmp_path: Path) -> None:
    def claim(requested: str = "cuda", timeout_s: float = 2.0) -> DeviceClaim:
        return claim_device(requested, visible_count=2, lock_dir=tmp_path, timeout_s=timeout_s,
                            poll_s=0.02, log=lambda m: None)

    a, b = claim("cuda"), claim("auto")
    assert {a.device, b.device} == {"cuda:0", "cuda:1"}
    with pytest.raises(TimeoutError):
        claim(timeout_s=0.1)
    a.release()
    a.release()  # idempotent
    c = claim()
    assert c.index == a.index
    assert c.lock_path.read_text().startswith(f"pid {os.getpid()} on ")
    b.release()
    c.release()


def test_scheduler_visible_devices_are_respected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    locks = tmp_path / "locks"
    for requested in ("cuda", "auto"):
        claim = claim_device(requested, visible_count=1, lock_dir=locks, log=lambda m: None)
        assert (claim.device, claim.lock_path) == ("cuda:0", None)
        claim.release()
    monkeypatch.setenv("LOTTERY_MIA_SIMULATED_GPUS", "2")
    assert claim_device("cuda", lock_dir=locks, log=lambda m: None).device == "cuda:0"
    assert not locks.exists()


def test_a_machines_own_single_visible_device_is_shared_through_its_slots(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A one-GPU machine that exports CUDA_VISIBLE_DEVICES=0 for everything: jobs still
    claim slot locks (named by the physical id), so gpu_slots shares the device and no
    more jobs than slots run on it (before: no lock at all, every job on cuda:0)."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    locks = tmp_path / "locks"
    a = claim_device("cuda", visible_count=1, lock_dir=locks, slots=2, log=lambda m: None)
    b = claim_device("cuda", visible_count=1, lock_dir=locks, slots=2, log=lambda m: None)
    assert a.device == b.device == "cuda:0"
    assert a.lock_path is not None and b.lock_path is not None
    assert a.lock_path != b.lock_path and "gpu-3" in a.lock_path.name
    with pytest.raises(TimeoutError):
        claim_device("cuda", visible_count=1, lock_dir=locks, slots=2, timeout_s=0.1,
                     log=lambda m: None)
    a.release(), b.release()


def test_explicit_index_takes_no_lock(tmp_path: Path) -> None:
    claim = claim_device("cuda:1", visible_count=2, lock_dir=tmp_path / "locks", log=lambda m: None)
    assert (claim.device, claim.index, claim.lock_path) == ("cuda:1", 1, None)
    assert not (tmp_path / "locks").exists()
    with pytest.raises(RuntimeError, match="only 2"):
        claim_device("cuda:2", visible_count=2, log=lambda m: None)


def test_cpu_auto_and_missing_cuda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locks = tmp_path / "locks"
    assert claim_device("cpu", visible_count=4, lock_dir=locks) == DeviceClaim("cpu", None, None)
    monkeypatch.setenv("LOTTERY_MIA_SIMULATED_GPUS", "0")
    assert claim_device("auto", lock_dir=locks) == DeviceClaim("cpu", None, None)
    for requested in ("cuda", "cuda:0"):
        with pytest.raises(RuntimeError, match="`device`") as err:
            claim_device(requested, lock_dir=locks)
        assert "device: cpu" in str(err.value)
    assert not locks.exists()
    with pytest.raises(ValueError):
        claim_device("tpu")


def test_no_torch_import_when_simulated(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(SRC)!r})
        import lottery_mia.devices as mod
        assert "torch" not in sys.modules, "imported torch at module level"
        mod.claim_device("cpu")
        mod.claim_device("cuda", visible_count=1, lock_dir={str(tmp_path)!r}, log=lambda m: None).release()
        assert "torch" not in sys.modules, "imported torch for a simulated claim"
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


def test_real_detection_matches_torch(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present; the claiming path is covered by the simulated tests")
    assert claim_device("auto", lock_dir=tmp_path, log=lambda m: None).device == "cpu"
    with pytest.raises(RuntimeError, match="`device`"):
        claim_device("cuda", lock_dir=tmp_path, log=lambda m: None)


# --------------------------------------------------------------------------- slots per device
def test_slots_place_several_workers_per_device(tmp_path: Path) -> None:
    """gpu_slots=2 on 2 devices: 4 concurrent jobs, two per device, each its own slot lock;
    a fifth waits."""
    n, slots = 2, 2
    out, locks = tmp_path / "out", tmp_path / "locks"
    out.mkdir()
    procs = [_start_worker(out, f"w{i}", n, locks, slots) for i in range(n * slots)]
    try:
        _wait_for(lambda: len(_claimed(out)) == n * slots, "4 claims", procs)
        assert sorted(_claimed(out).values()) == [0, 0, 1, 1]
        assert sorted(p.name for p in locks.glob("*.lock")) == [
            "gpu-0.lock", "gpu-0.slot1.lock", "gpu-1.lock", "gpu-1.slot1.lock"]
        procs.append(_start_worker(out, "extra", n, locks, slots))
        _wait_for(lambda: "busy" in (out / "log-extra").read_text(), "the fifth to wait", procs)
        assert "extra" not in _claimed(out)
    finally:
        _finish(procs, out)


def test_slots_spread_over_devices_first(tmp_path: Path) -> None:
    def claim(**kw) -> DeviceClaim:
        return claim_device("cuda", visible_count=3, lock_dir=tmp_path, timeout_s=0.1,
                            poll_s=0.02, log=lambda m: None, **kw)

    first = [claim(slots=2) for _ in range(3)]
    assert [c.index for c in first] == [0, 1, 2]
    second = [claim(slots=2) for _ in range(3)]
    assert [c.index for c in second] == [0, 1, 2]
    assert second[0].lock_path.name == "gpu-0.slot1.lock"
    with pytest.raises(TimeoutError, match="slot"):
        claim(slots=2)
    for c in first + second:
        c.release()


def test_slots_from_the_environment_and_bad_values(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOTTERY_MIA_GPU_SLOTS", "2")
    a = claim_device("cuda", visible_count=1, lock_dir=tmp_path, log=lambda m: None)
    b = claim_device("cuda", visible_count=1, lock_dir=tmp_path, timeout_s=0.1,
                     log=lambda m: None)
    assert (a.index, b.index) == (0, 0) and a.lock_path != b.lock_path
    a.release(), b.release()
    for bad in ("0", "two"):
        monkeypatch.setenv("LOTTERY_MIA_GPU_SLOTS", bad)
        with pytest.raises(ValueError, match="SLOTS|slots"):
            claim_device("cuda", visible_count=1, lock_dir=tmp_path, log=lambda m: None)


# --------------------------------------------------------------------------- CUDA_VISIBLE_DEVICES
def test_workstation_visible_devices_are_claimed_with_locks(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """CUDA_VISIBLE_DEVICES=0,1,2,3 on a workstation is not an assignment: jobs lock among
    the visible devices (locks named by physical id) instead of all taking cuda:0."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    claims = [claim_device("cuda", visible_count=4, lock_dir=tmp_path, timeout_s=0.1,
                           log=lambda m: None) for _ in range(4)]
    assert [c.device for c in claims] == ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
    assert all(c.lock_path is not None for c in claims)
    with pytest.raises(TimeoutError):
        claim_device("cuda", visible_count=4, lock_dir=tmp_path, timeout_s=0.1,
                     log=lambda m: None)
    for c in claims:
        c.release()
    # another job seeing only physical devices 2,3 gets the lock of physical 2 or 3
    claims[2] = claim_device("cuda", visible_count=4, lock_dir=tmp_path, log=lambda m: None)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    other = claim_device("cuda", visible_count=2, lock_dir=tmp_path, log=lambda m: None)
    assert claims[2].lock_path.name == "gpu-0.lock"  # index 0 of 0,1,2,3 is physical 0
    assert other.lock_path.name == "gpu-2.lock" and other.device == "cuda:0"
    claims[2].release(), other.release()


def test_scheduler_assignment_is_trusted_with_several_devices(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5")
    monkeypatch.setenv("SLURM_JOB_ID", "123")
    locks = tmp_path / "locks"
    for _ in range(3):
        claim = claim_device("cuda", visible_count=2, lock_dir=locks, log=lambda m: None)
        assert (claim.device, claim.lock_path) == ("cuda:0", None)
    assert not locks.exists()


# --------------------------------------------------------------------------- lock directory safety
def test_lock_dir_is_created_private(tmp_path: Path) -> None:
    locks = tmp_path / "locks"
    claim_device("cuda", visible_count=1, lock_dir=locks, log=lambda m: None).release()
    assert locks.stat().st_mode & 0o777 == 0o700
    assert (locks / "gpu-0.lock").stat().st_mode & 0o777 == 0o600


def test_foreign_lock_dir_is_refused(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("simulating another owner needs root (os.chown)")
    locks = tmp_path / "locks"
    locks.mkdir(mode=0o700)
    os.chown(locks, 4242, 4242)
    with pytest.raises(PermissionError, match="owned by uid 4242") as err:
        claim_device("cuda", visible_count=1, lock_dir=locks, log=lambda m: None)
    assert str(locks) in str(err.value) and "LOTTERY_MIA_GPU_LOCK_DIR" in str(err.value)


def test_shared_or_linked_lock_dir_is_refused(tmp_path: Path) -> None:
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    with pytest.raises(PermissionError, match="writable by others"):
        claim_device("cuda", visible_count=1, lock_dir=open_dir, log=lambda m: None)
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(PermissionError, match="symbolic link"):
        claim_device("cuda", visible_count=1, lock_dir=tmp_path / "link", log=lambda m: None)


def test_planted_symlink_lock_file_is_not_followed(tmp_path: Path) -> None:
    locks = tmp_path / "locks"
    locks.mkdir(mode=0o700)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (locks / "gpu-0.lock").symlink_to(victim)
    with pytest.raises(PermissionError, match="symbolic link"):
        claim_device("cuda", visible_count=1, lock_dir=locks, log=lambda m: None)
    assert victim.read_text() == "precious\n"  # never truncated through the link


# --------------------------------------------------------------------------- at DAG time
def test_device_cuda_without_a_gpu_is_named_without_importing_torch(monkeypatch) -> None:
    from lottery_mia.devices import device_without_gpu, gpus_seen_without_torch

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.delenv("LOTTERY_MIA_SIMULATED_GPUS", raising=False)
    assert gpus_seen_without_torch() == 0
    msg = device_without_gpu("cuda")
    assert msg and "config key 'device'" in msg and "device: cpu" in msg
    assert device_without_gpu("cpu") is None and device_without_gpu("auto") is None
    monkeypatch.setenv("LOTTERY_MIA_SIMULATED_GPUS", "2")
    assert device_without_gpu("cuda:1") is None
    assert "2 GPU(s)" in device_without_gpu("cuda:2")


def test_a_run_with_device_cuda_and_no_gpu_stops_before_its_first_job(tmp_path) -> None:
    import os

    from conftest import run_snakemake, tiny_config, write_config

    cfg = tiny_config()
    cfg["device"] = "cuda"
    write_config(tmp_path, cfg)
    env = {k: v for k, v in os.environ.items() if k != "LOTTERY_MIA_SIMULATED_GPUS"}
    env["CUDA_VISIBLE_DEVICES"] = ""
    dry = run_snakemake(tmp_path, "-n", "--cores", "1", env=env)
    assert "config key 'device': 'cuda'" in dry.stdout + dry.stderr
    real = run_snakemake(tmp_path, "--cores", "1", check=False, env=env)
    assert real.returncode != 0
    assert "config key 'device': 'cuda'" in real.stdout + real.stderr
    assert not (tmp_path / "results").exists()
