"""The warm worker (lottery_mia.jobs.warm): a job handed to it behaves as the same job run in
its own process (streams, exit status, environment, thread counts, results), a job that
cannot be handed over runs in its own process, and a cancelled job's child dies with it."""

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

from lottery_mia.jobs import warm

SRC = str(Path(__file__).resolve().parents[1] / "src")

# A job script as the workflow's scripts start: hand over to the worker if one serves.
PROLOGUE = f"""
import json, os, sys
sys.path.insert(0, {SRC!r})
from lottery_mia.jobs.warm import delegate
delegate({SRC!r})
WHERE = "worker" if os.environ.get("LOTTERY_MIA_WARM_CHILD") else "own process"
"""


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = tmp_path_factory.mktemp("warm") / "warm.log"
    before = os.environ.get(warm.ENV)
    srv = warm.start(SRC, str(log))
    assert srv is not None
    assert wait_for(lambda: os.path.exists(srv.socket_path)), log.read_text()
    yield srv
    srv.stop()
    if before is None:
        os.environ.pop(warm.ENV, None)
    else:
        os.environ[warm.ENV] = before


def run_job(tmp_path, body, *args, env=None, name="job.py", before=""):
    script = tmp_path / name
    script.write_text(before + PROLOGUE + textwrap.dedent(body))
    return subprocess.run([sys.executable, name, *args], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=300)


def test_a_job_runs_in_the_worker_with_its_own_streams_cwd_argv_and_environment(server,
                                                                                tmp_path):
    log = tmp_path / "job.log"
    # the script as Snakemake writes it: its preamble defines `snakemake` first
    preamble = f"import types\nsnakemake = types.SimpleNamespace(log=[{str(log)!r}])\n"
    proc = run_job(tmp_path, f"""
        print(WHERE, os.getcwd(), sys.argv[1:], os.environ["JOB_SETTING"], os.getpid())
        print("to stderr", file=sys.stderr)
        os.write(1, b"raw fd write\\n")
        open({str(log)!r}, "w").write("the job's own line\\n")
    """, "a", "b", env={"JOB_SETTING": "x1"}, before=preamble)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"worker {tmp_path} ['a', 'b'] x1 ")
    assert "raw fd write" in proc.stdout and "to stderr" in proc.stderr
    # Snakemake's benchmark sees the waiting process: the fork's usage goes to the log
    first, usage = log.read_text().splitlines()
    assert first == "the job's own line" and usage.startswith("# warm worker: the job's peak")
    from lottery_mia.benchmarks import fork_usage

    rss_mb, cpu_s = fork_usage(log)  # the line summary/benchmarks.csv reads
    assert rss_mb > 50 and cpu_s >= 0


@pytest.mark.parametrize("body, code, message", [
    ("sys.exit(3)", 3, None),
    ("sys.exit('bad input: x')", 1, "bad input: x"),
    ("raise ValueError('the job failed')", 1, "ValueError: the job failed"),
    ("os.kill(os.getpid(), 9)", 128 + 9, None),
])
def test_the_jobs_exit_status_and_traceback_reach_snakemake(server, tmp_path, body, code,
                                                            message):
    proc = run_job(tmp_path, "assert WHERE == 'worker'\n" + body)
    assert proc.returncode == code, proc.stderr
    if message:
        assert message in proc.stderr


def test_the_thread_counts_of_the_job_are_applied_in_the_worker(server, tmp_path):
    body = """
        import torch
        from threadpoolctl import threadpool_info
        blas = sorted({p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"})
        print(json.dumps([WHERE, torch.get_num_threads(), blas]))
    """
    for n in ("1", "2"):
        proc = run_job(tmp_path, body, env={"OMP_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n})
        where, torch_threads, blas = json.loads(proc.stdout)
        assert where == "worker" and torch_threads == int(n) and blas == [int(n)]


def test_a_job_in_the_worker_computes_exactly_what_it_computes_in_its_own_process(server,
                                                                                  tmp_path):
    # torch training with SGD and scikit-learn's MLP: the worker's children start from the
    # state a fresh import leaves (no random draw, no thread pool used in the server)
    body = """
        import numpy as np, torch
        from sklearn.datasets import load_digits
        from sklearn.neural_network import MLPClassifier
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(),
                                  torch.nn.Linear(32, 10))
        X, y = load_digits(return_X_y=True)
        x, t = torch.tensor(X[:256], dtype=torch.float32), torch.tensor(y[:256])
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        for _ in range(20):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x), t).backward()
            opt.step()
        torch.save(net.state_dict(), sys.argv[1] + ".pt")
        clf = MLPClassifier((16,), max_iter=30, random_state=0).fit(X[:500], y[:500])
        np.save(sys.argv[1] + ".npy", clf.predict_proba(X[500:700]))
        print(json.dumps([WHERE, torch.initial_seed(), float(torch.rand(1))]))
    """
    env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    warm_run = run_job(tmp_path, body, "warm", env=env)
    own_run = run_job(tmp_path, body, "own", env={**env, warm.ENV: "0"})
    warm_out, own_out = json.loads(warm_run.stdout), json.loads(own_run.stdout)
    assert warm_out[0] == "worker" and own_out[0] == "own process", warm_run.stderr
    assert warm_out[1:] == own_out[1:]  # the same default seed and generator state
    import numpy as np
    import torch

    a, b = torch.load(tmp_path / "warm.pt"), torch.load(tmp_path / "own.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert np.array_equal(np.load(tmp_path / "warm.npy"), np.load(tmp_path / "own.npy"))


def test_the_worker_does_not_preload_dynamo_or_torchvision_models(server, tmp_path):
    proc = run_job(tmp_path, """
        print(json.dumps([WHERE, "torch" in sys.modules, "torch._dynamo" in sys.modules,
                          "torchvision.models" in sys.modules]))
    """)
    assert json.loads(proc.stdout) == ["worker", True, False, False]


def test_without_a_usable_worker_the_job_runs_in_its_own_process(server, tmp_path):
    body = "print(WHERE)"
    assert run_job(tmp_path, body, env={warm.ENV: "0"}).stdout.strip() == "own process"
    missing = str(tmp_path / "no-such-socket")
    assert run_job(tmp_path, body, env={warm.ENV: missing}).stdout.strip() == "own process"
    # a worker of another checkout refuses: its package is not this job's
    other = PROLOGUE.replace(f"delegate({SRC!r})", "delegate('/another/checkout/src')")
    (tmp_path / "other.py").write_text(other + "print(WHERE)\n")
    proc = subprocess.run([sys.executable, "other.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.stdout.strip() == "own process", proc.stderr
    # a job in another Python environment (a conda env of --sdm conda) is refused too
    (tmp_path / "conda.py").write_text(PROLOGUE.replace(
        "from lottery_mia.jobs.warm import delegate",
        "from lottery_mia.jobs import warm\nwarm._interpreter = lambda: '/conda/env/python|/x'"
        "\nfrom lottery_mia.jobs.warm import delegate") + "print(WHERE)\n")
    proc = subprocess.run([sys.executable, "conda.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.stdout.strip() == "own process", proc.stderr


def test_cancelling_a_job_kills_its_child_and_the_childs_processes(server, tmp_path):
    pids = tmp_path / "pids.json"
    script = tmp_path / "slow.py"
    script.write_text(PROLOGUE + textwrap.dedent(f"""
        import subprocess, time
        sub = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open({str(pids)!r}, "w").write(json.dumps([WHERE, os.getpid(), sub.pid]))
        time.sleep(600)
    """))
    job = subprocess.Popen([sys.executable, "slow.py"], cwd=tmp_path)
    assert wait_for(lambda: pids.exists() and pids.read_text())
    where, child, grandchild = json.loads(pids.read_text())
    assert where == "worker"
    job.send_signal(signal.SIGTERM)
    job.wait(30)

    def gone(pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        stat = Path(f"/proc/{pid}/stat")
        return stat.exists() and stat.read_text().split(") ")[1].startswith("Z")

    assert wait_for(lambda: gone(child) and gone(grandchild), timeout=30)


def test_the_worker_stops_when_the_run_that_started_it_is_gone(tmp_path):
    starter = tmp_path / "starter.py"
    starter.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {SRC!r})
        from lottery_mia.jobs import warm
        srv = warm.start({SRC!r}, {str(tmp_path / 'log')!r}, preload=("json",))
        print(srv.process.pid, srv.socket_path)
    """))  # exits at once, as a killed snakemake would, without stopping the server
    out = subprocess.run([sys.executable, str(starter)], capture_output=True, text=True,
                         timeout=60, env={k: v for k, v in os.environ.items()
                                          if k != warm.ENV})
    pid, socket_path = out.stdout.split()
    pid = int(pid)

    def exited():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")

    assert wait_for(exited, timeout=30)
    # and leaves no socket folder behind in the temporary directory
    assert wait_for(lambda: not os.path.exists(os.path.dirname(socket_path)), timeout=10)
