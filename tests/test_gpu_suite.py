"""benchmarks/gpu_suite.py on the CPU: a run cannot pass by accident (a check skipped for lack
of time, a failure, an error or a timeout fails it; a check that does not apply does not), a
timed-out check is killed with every process it started, ``--dry-run`` works where torch and
pydantic do not import, missing modules are installed offline from wheels (or the suite
stops with one line), and the real checks run at smoke sizes on the CPU."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "benchmarks" / "gpu_suite.py"


def _load_suite():
    spec = importlib.util.spec_from_file_location("gpu_suite_under_test", SUITE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


suite = _load_suite()

FAKE_CHECKS = '''
import subprocess, sys, time, os
from pathlib import Path

HERE = Path(__file__).parent
REQUIREMENTS = {requirements!r}


class Skip(Exception):
    pass


def check_ok(device, smoke):
    out = {{"value": 1.5, "smoke": smoke, "device": device}}
    if REQUIREMENTS:  # what the suite installed, imported in the check's own process
        import lottery_mia_fake_mod
        out["installed_value"] = lottery_mia_fake_mod.VALUE
    return out


def check_not_here(device, smoke):
    raise Skip("needs two GPUs")


def check_wrong(device, smoke):
    raise AssertionError("the numbers are off")


def check_broken(device, smoke):
    raise RuntimeError("an illegal memory access")


def check_hangs(device, smoke):
    sleep = [sys.executable, "-c", "import time; time.sleep(600)"]
    child = subprocess.Popen(sleep)
    regrouped = subprocess.Popen(sleep, preexec_fn=os.setpgrp)  # a group of its own
    (HERE / "children.txt").write_text(f"{{child.pid}} {{regrouped.pid}}")
    time.sleep(600)


def check_big(device, smoke):
    return {{}}


CHECKS = [("ok", "returns a number", 20, 10), ("not_here", "raises Skip", 20, 10),
          ("wrong", "fails", 20, 10), ("broken", "raises an error", 20, 10),
          ("hangs", "sleeps past its limit, two children too", 6, 6),
          ("big", "a limit beyond the budget", 100000, 100000)]
FUNCS = {{"ok": check_ok, "not_here": check_not_here, "wrong": check_wrong,
         "broken": check_broken, "hangs": check_hangs, "big": check_big}}
'''


def _fake_checks(folder: Path, requirements=()) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fake_checks.py"
    path.write_text(FAKE_CHECKS.format(requirements=list(requirements)))
    return path


def _run_suite(*args, env=None, timeout=300) -> tuple[subprocess.CompletedProcess, dict]:
    proc = subprocess.run([sys.executable, str(SUITE), *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=str(ROOT))
    lines = proc.stdout.strip().splitlines()
    assert lines, proc.stderr[-3000:]
    return proc, json.loads(lines[-1])


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for its reaper is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def _wheel(folder: Path, dist: str = "lottery_mia_fake", module: str = "lottery_mia_fake_mod"
           ) -> Path:
    """A minimal pure wheel of ``dist`` holding ``module`` (VALUE = 42)."""
    folder.mkdir(parents=True, exist_ok=True)
    info = f"{dist}-1.0.dist-info"
    files = {f"{module}.py": "VALUE = 42\n",
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
                              "Tag: py3-none-any\n"}
    files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"])
    path = folder / f"{dist}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return path


# --------------------------------------------------------------------------- the verdict
@pytest.mark.parametrize("statuses, passed", [
    ({"a": "pass", "b": "not_applicable"}, True),
    ({"a": "pass", "b": "skipped"}, False),
    ({"a": "pass", "b": "fail"}, False),
    ({"a": "pass", "b": "error"}, False),
    ({"a": "pass", "b": "timeout"}, False),
    ({"b": "not_applicable"}, False),  # nothing ran: nothing passed
    ({}, False),
])
def test_only_passes_and_inapplicable_checks_pass_the_suite(statuses, passed):
    got = suite.summarize({k: {"status": v} for k, v in statuses.items()})
    assert got["passed"] is passed
    assert got["skipped"] == [k for k, v in statuses.items() if v == "skipped"]
    assert got["not_applicable"] == [k for k, v in statuses.items() if v == "not_applicable"]


# --------------------------------------------------------------------------- the runner
@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    """Every fake check through the real runner: each status once."""
    d = tmp_path_factory.mktemp("fake")
    checks = _fake_checks(d / "checks")
    t0 = time.time()
    proc, doc = _run_suite("--checks-module", str(checks), "--device", "cpu",
                           "--budget", "120", "--site", str(d / "site"),
                           "--wheels", str(d / "wheels"))
    return {"proc": proc, "doc": doc, "seconds": time.time() - t0, "dir": d / "checks"}


def test_each_outcome_gets_its_status_and_any_failure_fails_the_suite(fake_run):
    doc, proc = fake_run["doc"], fake_run["proc"]
    got = {name: res["status"] for name, res in doc["checks"].items()}
    assert got == {"ok": "pass", "not_here": "not_applicable", "wrong": "fail",
                   "broken": "error", "hangs": "timeout", "big": "skipped"}, doc
    assert doc["checks"]["ok"]["value"] == 1.5 and doc["checks"]["ok"]["device"] == "cpu"
    assert "numbers are off" in doc["checks"]["wrong"]["reason"]
    assert "illegal memory access" in doc["checks"]["broken"]["reason"]
    assert doc["not_applicable"] == ["not_here"] and doc["skipped"] == ["big"]
    assert doc["passed"] is False and proc.returncode == 1


def test_a_budget_skip_alone_fails_the_suite(tmp_path):
    checks = _fake_checks(tmp_path)
    common = ["--checks-module", str(checks), "--device", "cpu", "--site",
              str(tmp_path / "site"), "--wheels", str(tmp_path / "wheels")]
    proc, doc = _run_suite(*common, "--only", "ok", "not_here")
    assert doc["passed"] is True and proc.returncode == 0, doc  # the control: it can pass
    proc, doc = _run_suite(*common, "--only", "ok", "not_here", "big")
    assert doc["checks"]["big"]["status"] == "skipped"
    assert "time budget" in doc["checks"]["big"]["reason"]
    assert doc["passed"] is False and proc.returncode == 1


def test_a_timed_out_check_is_killed_with_its_whole_process_group(fake_run):
    doc = fake_run["doc"]
    assert "killed" in doc["checks"]["hangs"]["reason"]
    assert doc["checks"]["hangs"]["wall_seconds"] < 6 + 15
    pids = [int(p) for p in (fake_run["dir"] / "children.txt").read_text().split()]
    assert len(pids) == 2
    assert not any(_alive(pid) for pid in pids), pids  # both: its group and the one it made
    assert fake_run["seconds"] < 90  # nobody waited for the 600 s sleeps


def test_group_helpers_find_and_kill_a_session(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; "
                             "subprocess.Popen([sys.executable, '-c', 'import time; "
                             "time.sleep(600)']); time.sleep(600)"], start_new_session=True)
    try:
        deadline = time.time() + 30
        while len(suite.group_members(proc.pid)) < 2 and time.time() < deadline:
            time.sleep(0.05)
        members = suite.group_members(proc.pid)
        assert proc.pid in members and len(members) == 2
        killed, survivors = suite.kill_group(proc.pid)
        assert killed == 2 and survivors == []
        assert suite.group_members(proc.pid) == []
    finally:
        proc.kill()
        proc.wait()


# --------------------------------------------------------------------------- dry run
def test_dry_run_lists_every_check_with_limits_that_fit_the_budgets():
    proc, doc = _run_suite("--dry-run")
    assert proc.returncode == 0
    names = [c["name"] for c in doc["checks"]]
    for name in ("learns", "cuda_resume", "decode_matches_cpu", "ddp_one_gpu"):
        assert name in names
        assert any(line.startswith(name) for line in proc.stdout.splitlines())
    assert doc["limits_sum_s"] == sum(c["limit_s"] for c in doc["checks"])
    assert doc["limits_sum_s"] <= suite.FULL_BUDGET_S - suite.RESERVE_S
    assert doc["smoke_limits_sum_s"] <= suite.SMOKE_BUDGET_S - suite.RESERVE_S
    assert suite.FULL_BUDGET_S <= 540 and suite.SMOKE_BUDGET_S <= 240
    assert all(0 < c["smoke_limit_s"] <= c["limit_s"] for c in doc["checks"])


BARE_MACHINE = '''
import sys


class _Bare:
    """Imports of what a bare GPU machine lacks fail (torch too: a dry run needs none)."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"pydantic", "safetensors", "snakemake", "torch"}:
            raise ImportError(f"{name} is not installed here (simulated)")
        return None


sys.meta_path.insert(0, _Bare())
'''


def test_dry_run_works_where_pydantic_and_torch_do_not_import(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(BARE_MACHINE)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    blocked = subprocess.run([sys.executable, "-c", "import pydantic"], capture_output=True,
                             text=True, env=env)
    assert blocked.returncode != 0 and "simulated" in blocked.stderr  # the stand-in works
    proc, doc = _run_suite("--dry-run", "--smoke", env=env)
    assert proc.returncode == 0, proc.stderr
    assert doc["dry_run"] is True and doc["budget_s"] == suite.SMOKE_BUDGET_S
    assert "cuda_resume" in [c["name"] for c in doc["checks"]]


# --------------------------------------------------------------------------- modules
def test_missing_modules_without_wheels_stop_the_suite_with_one_line(tmp_path):
    checks = _fake_checks(tmp_path / "checks",
                          [["lottery_mia_fake", "import lottery_mia_fake_mod"]])
    proc, doc = _run_suite("--checks-module", str(checks), "--device", "cpu",
                           "--site", str(tmp_path / "site"), "--wheels", str(tmp_path / "none"))
    assert proc.returncode == 2 and len(proc.stdout.strip().splitlines()) == 1
    assert doc["passed"] is False
    assert "lottery_mia_fake" in doc["error"] and "prepare_gpu_wheels.py" in doc["error"]
    assert "checks" not in doc  # nothing ran


def test_missing_modules_are_installed_from_the_wheels_for_the_checks(tmp_path):
    _wheel(tmp_path / "wheels")
    checks = _fake_checks(tmp_path / "checks",
                          [["lottery_mia_fake", "import lottery_mia_fake_mod"]])
    site = tmp_path / "site"
    proc, doc = _run_suite("--checks-module", str(checks), "--device", "cpu", "--only", "ok",
                           "--site", str(site), "--wheels", str(tmp_path / "wheels"))
    assert doc["passed"] is True, doc
    assert doc["installed_from_wheels"] == ["lottery_mia_fake"]
    assert (site / "lottery_mia_fake_mod.py").exists()
    assert doc["checks"]["ok"]["installed_value"] == 42  # importable in the check's process
    proc, doc = _run_suite("--checks-module", str(checks), "--device", "cpu", "--only", "ok",
                           "--site", str(site), "--wheels", str(tmp_path / "wheels"))
    assert doc["passed"] is True and doc["installed_from_wheels"] == []  # already there


def test_without_pip_the_wheels_that_fit_are_unpacked(tmp_path):
    _wheel(tmp_path / "wheels")
    reqs = [("lottery_mia_fake", "import lottery_mia_fake_mod")]
    env, installed, error = suite.ensure_modules(reqs, wheels=tmp_path / "wheels",
                                                 site=tmp_path / "site", use_pip=False)
    assert error is None and installed == ["lottery_mia_fake"]
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(tmp_path / "site")
    got = subprocess.run([sys.executable, "-c", "import lottery_mia_fake_mod as m; "
                          "print(m.VALUE)"], capture_output=True, text=True, env=env)
    assert got.stdout.strip() == "42"


@pytest.mark.parametrize("name, version, fits", [
    ("pydantic-2.14.4-py3-none-any.whl", (3, 10), True),
    ("pyyaml-6.0.4-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl", (3, 11), True),
    ("pyyaml-6.0.4-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl", (3, 12), False),
    ("safetensors-0.8.0-cp310-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", (3, 13),
     True),
    ("safetensors-0.8.0-cp310-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", (3, 9),
     False),
    ("pydantic_core-2.50.5-cp311-cp311-macosx_11_0_arm64.whl", (3, 11), False),
])
def test_wheel_tags_decide_what_is_unpacked(name, version, fits, monkeypatch):
    import platform

    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    assert suite.wheel_fits(name, version) is fits


# --------------------------------------------------------------------------- real checks
def _smoke_on_cpu(*only) -> dict:
    proc, doc = _run_suite("--smoke", "--device", "cpu", "--limit-scale", "4", "--only",
                           *only, timeout=900)
    assert doc["passed"] is True, json.dumps(doc, default=str)[-5000:]
    return doc


def test_the_new_checks_run_at_smoke_sizes_on_the_cpu():
    doc = _smoke_on_cpu("learns", "decode_matches_cpu", "cuda_resume", "ddp_one_gpu")
    checks = doc["checks"]
    assert {n: r["status"] for n, r in checks.items()} == dict.fromkeys(checks, "pass")
    assert checks["learns"]["test_acc"] >= 0.9
    assert checks["cuda_resume"]["weights"]["model.pt"]["relative"] == 0.0  # bit for bit
    assert checks["ddp_one_gpu"]["wrapped_in"] == "DistributedDataParallel"
    assert checks["decode_matches_cpu"]["decoded_on"] == ["cpu"]


@pytest.mark.slow
def test_every_other_cpu_capable_check_runs_at_smoke_sizes_on_the_cpu():
    from gpu_checks import CHECKS

    new = {"learns", "decode_matches_cpu", "cuda_resume", "ddp_one_gpu"}
    doc = _smoke_on_cpu(*[c[0] for c in CHECKS if c[0] not in new])
    statuses = {n: r["status"] for n, r in doc["checks"].items()}
    assert statuses.pop("sync_free") == "not_applicable"  # sync_debug_mode is CUDA's
    assert set(statuses.values()) == {"pass"}, statuses


def test_decode_matches_cpu_fails_when_the_device_views_are_mirrored(monkeypatch):
    """The comparison sees a wrong device path (here: views flipped upside down)."""
    import gpu_checks
    from lottery_mia.imagesets import folder_images

    resize = folder_images._resize_float
    monkeypatch.setattr(folder_images, "_resize_float",
                        lambda img, size: resize(img, size).flip(-2))
    with pytest.raises(AssertionError, match="mean difference"):
        gpu_checks.check_decode_matches_cpu("cpu", True)


def test_cuda_resume_fails_when_the_rerun_does_not_resume(monkeypatch):
    """A rerun that throws the killed job's state away trains afresh; on the CPU it even
    ends at the same weights, so the check must notice that it did not resume."""
    import gpu_checks
    from lottery_mia import training

    monkeypatch.setattr(training, "load_resume", lambda path, **kw: None)
    with pytest.raises(AssertionError, match="did not resume"):
        gpu_checks.check_cuda_resume("cpu", True)
