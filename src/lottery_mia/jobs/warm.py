"""The warm worker: the jobs of a local run start from an interpreter that has already
imported what they need.

Every job of the workflow is a fresh Python process (Snakemake's ``script:``), and most of a
small job's life is imports: torch, pandas, pyarrow, scikit-learn, matplotlib and the
package (``benchmarks/startup.py`` measures it per kind of job). For a local run, the
Snakefile's ``onstart`` calls :func:`start`: one server process imports these once and
listens on a Unix socket whose path every job inherits in ``LOTTERY_MIA_WARM``. The first
thing each script does (``workflow/scripts/_checkout.py``) is :func:`delegate`: it hands the
job (its script file, argument vector, working directory, environment, import path and its
standard streams, the file descriptors themselves) to the server, which forks a child that
runs that same script; the job's process waits and exits with the child's exit status.
Snakemake still sees one process per job, with the same inputs, outputs, logs, exit status
and reruns; only the imports are shared (copy-on-write).

Without a server nothing changes: no variable, a server still importing, a server of
another checkout (its ``src`` differs) or of another Python environment (a job of
``--sdm conda`` runs in its rule's environment), or any failure to hand the job over runs
the job in its own process as before. ``LOTTERY_MIA_WARM=0`` in the environment of ``snakemake``
turns the server off; cluster executors never start one (their jobs run elsewhere).

What keeps a child the same as a fresh interpreter:

- the server imports modules and nothing else: no torch operation, no CUDA, no random
  draw, no thread pool in use, so the child starts from the state a fresh import leaves;
- the child takes the job's environment, working directory, ``sys.argv`` and ``sys.path``,
  and the thread counts Snakemake gives the job (``OMP_NUM_THREADS``,
  ``OPENBLAS_NUM_THREADS``: libraries read them when they load, which was in the server,
  so they are applied again through torch and threadpoolctl);
- it exits like an interpreter does: ``SystemExit`` codes, a traceback and status 1 for an
  exception, ``atexit`` handlers, non-daemon threads joined.

What differs: the modules are those the server imported when the run started (editing the
package during a run reaches the jobs of the next run), and the string hash seed is the
server's. If the job's process is killed (Snakemake cancelling it), its child and the
child's own processes are killed with it.

Processes: server (imports, accepts, forks) -> keeper (one per job: reports the exit
status, watches the job's connection) -> job (its own process group). The server ignores
SIGCHLD so keepers need no reaping; keepers and jobs restore the default.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ENV = "LOTTERY_MIA_WARM"          # the socket's path; "0" turns the server off
CHILD = "LOTTERY_MIA_WARM_CHILD"  # set in a job the server runs (its log header says so)

# What the jobs of the default run import (their import sets, see benchmarks/startup.py),
# never torch._dynamo or torchvision.models (a test keeps them out).
PRELOAD = (
    "numpy", "pandas", "pyarrow", "pyarrow.parquet", "torch", "torch.nn",
    "torch.nn.functional", "torch.utils.data", "sklearn.neural_network",
    "sklearn.ensemble", "sklearn.linear_model", "sklearn.svm", "sklearn.metrics",
    "sklearn.model_selection", "threadpoolctl", "matplotlib", "matplotlib.pyplot",
    "snakemake.script",
    "lottery_mia.jobs.split", "lottery_mia.jobs.train", "lottery_mia.jobs.prune",
    "lottery_mia.jobs.score", "lottery_mia.jobs.attack", "lottery_mia.jobs.summarize",
    "lottery_mia.jobs.tables", "lottery_mia.jobs.figure", "lottery_mia.jobs.report",
)
_HEADER = struct.Struct("!I")
_STREAMS = (0, 1, 2)


# --- the job's side ------------------------------------------------------------------------

def delegate(src: str) -> None:
    """Run this job in the warm worker if one serves this run, and exit with its status.

    Returns (the job then runs in this process) when there is no server, it is not ready,
    it serves another checkout than ``src``, or the job could not be handed over.
    """
    path = os.environ.get(ENV)
    if not path or path == "0" or os.environ.get(CHILD):
        return
    request = {"src": src, "python": _interpreter(), "argv": sys.argv, "cwd": os.getcwd(),
               "env": dict(os.environ), "path": sys.path}
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(10.0)
        conn.connect(path)
        payload = json.dumps(request).encode()
        socket.send_fds(conn, [_HEADER.pack(len(payload)) + payload], list(_STREAMS))
        replies = conn.makefile("rb")
        first = replies.readline()
    except OSError:
        return
    if first != b"started\n":  # refused before anything ran: run it here
        conn.close()
        return
    conn.settimeout(None)
    try:
        last = replies.readline().decode().split()
    except OSError:
        last = []
    if len(last) >= 2 and last[0] == "exit":
        code = int(last[1])
        if len(last) == 4:
            _note_usage(float(last[2]), float(last[3]))
        os._exit(code if code >= 0 else 128 - code)
    os.write(2, b"lottery_mia: the warm worker lost this job (its server stopped?)\n")
    os._exit(1)


def _note_usage(max_rss_mb: float, cpu_s: float) -> None:
    """Append the forked job's peak memory and CPU time to its log: Snakemake's benchmark
    record measures this (waiting) process, not the fork."""
    job = getattr(sys.modules.get("__main__"), "snakemake", None)
    logs = list(getattr(job, "log", None) or [])
    if not logs:
        return
    try:
        with open(logs[0], "a") as fh:
            fh.write(f"# warm worker: the job's peak RSS {max_rss_mb:.0f} MB (its pages "
                     f"shared with the worker included), CPU time {cpu_s:.1f} s; the "
                     "benchmark record's max_rss and cpu_time are the waiting process's\n")
    except OSError:
        pass


def _interpreter() -> str:
    """This interpreter and its environment (a job run in another one, a conda
    environment of ``--sdm conda`` say, must not run in the worker's)."""
    return f"{os.path.realpath(sys.executable)}|{os.path.realpath(sys.prefix)}"


# --- the server's side ---------------------------------------------------------------------

def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    data, fds, _, _ = socket.recv_fds(conn, 1 << 16, len(_STREAMS))
    if len(data) < _HEADER.size:
        raise OSError("short request")
    (size,) = _HEADER.unpack(data[:_HEADER.size])
    data = data[_HEADER.size:]
    while len(data) < size:
        more = conn.recv(size - len(data))
        if not more:
            raise OSError("truncated request")
        data += more
    if len(fds) != len(_STREAMS):
        raise OSError("the request did not carry the job's standard streams")
    return json.loads(data), fds


def _exit_code(value) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    print(value, file=sys.stderr)
    return 1


def _run_job(request: dict, fds: list[int]) -> None:
    """In the job's process (forked from the server): become the job, run it, exit."""
    os.setpgid(0, 0)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for fd, target in zip(fds, _STREAMS):
        os.dup2(fd, target)
        os.close(fd)
    os.environ.clear()
    os.environ.update(request["env"])
    os.environ[CHILD] = "1"
    os.chdir(request["cwd"])
    sys.argv[:] = request["argv"]
    sys.path[:] = request["path"]
    tempfile.tempdir = None  # TMPDIR is the job's
    _apply_thread_counts(os.environ)
    code = 0
    try:
        import runpy

        runpy.run_path(sys.argv[0], run_name="__main__")
    except SystemExit as stop:
        code = _exit_code(stop.code)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    code = _finish(code)
    os._exit(code)


def _apply_thread_counts(env) -> None:
    """The thread counts Snakemake gives the job, applied to libraries loaded before."""
    def count(key):
        try:
            return max(int(env[key]), 1)
        except (KeyError, ValueError):
            return None

    omp, blas = count("OMP_NUM_THREADS"), count("OPENBLAS_NUM_THREADS")
    if omp is not None and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(omp)
    if "threadpoolctl" in sys.modules:
        limits = sys.modules["threadpoolctl"].threadpool_limits
        if blas is not None:
            limits(blas, user_api="blas")
        if omp is not None:
            limits(omp, user_api="openmp")


def _finish(code: int) -> int:
    """What an interpreter does on exit: join non-daemon threads, run atexit, flush."""
    import atexit
    import threading

    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    try:
        atexit._run_exitfuncs()
    except BaseException:
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            code = code or 1
    return code


def _keep(conn: socket.socket, request: dict, fds: list[int]) -> None:
    """In the keeper (forked from the server): fork the job, report its exit status, and
    kill it (its process group) if the job's own process goes away first."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    pid = os.fork()
    if pid == 0:
        conn.close()
        _run_job(request, fds)
    for fd in fds:
        os.close(fd)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass  # the job set it already
    conn.sendall(b"started\n")
    watch = [conn]
    pidfd = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None
    if pidfd is not None:
        watch.append(pidfd)
    while True:
        ready, _, _ = select.select(watch, [], [], None if pidfd is not None else 0.05)
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if conn in ready and not conn.recv(1):  # the job's process is gone: cancel
            _kill_group(pid)
            os._exit(0)
    try:
        conn.sendall(f"exit {os.waitstatus_to_exitcode(status)} {usage.ru_maxrss / 1024:.1f} "
                     f"{usage.ru_utime + usage.ru_stime:.2f}\n".encode())
    finally:
        os._exit(0)


def _kill_group(pid: int, grace: float = 10.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def serve(socket_path: str, src: str, preload=PRELOAD, parent: int | None = None) -> None:
    """Import ``preload``, then run each job handed over on ``socket_path`` in a fork.

    Stops when the process that started it (``parent``, default: this one's parent) is gone.
    """
    if src not in sys.path:
        sys.path.insert(0, src)
    t0 = time.perf_counter()
    for name in preload:
        try:
            importlib.import_module(name)
        except Exception as err:  # a job that needs it imports it (and fails) itself
            print(f"warm worker: not preloaded {name}: {err!r}", flush=True)
    print(f"warm worker: {len(sys.modules)} modules imported in "
          f"{time.perf_counter() - t0:.1f} s; serving {socket_path}", flush=True)
    parent = os.getppid() if parent is None else parent
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    staging = socket_path + ".binding"
    listener.bind(staging)
    listener.listen(64)
    os.replace(staging, socket_path)  # jobs see the socket only once it serves
    listener.settimeout(1.0)
    served = 0
    while True:
        if os.getppid() != parent:
            break
        try:
            conn, _ = listener.accept()
        except (socket.timeout, InterruptedError):
            continue
        conn.settimeout(10.0)
        try:
            request, fds = _receive(conn)
        except (OSError, ValueError) as err:
            print(f"warm worker: bad request: {err}", flush=True)
            conn.close()
            continue
        refused = ("another checkout" if request.get("src") != src else
                   "another Python environment" if request.get("python") != _interpreter()
                   else None)
        if refused:
            conn.sendall(f"refused: the warm worker serves {refused}\n".encode())
            conn.close()
            for fd in fds:
                os.close(fd)
            continue
        conn.settimeout(None)
        pid = os.fork()
        if pid == 0:
            listener.close()
            _keep(conn, request, fds)
        conn.close()
        for fd in fds:
            os.close(fd)
        served += 1
    print(f"warm worker: stopping after {served} jobs", flush=True)
    remove_socket(socket_path)


def remove_socket(socket_path: str) -> None:
    """Remove the socket and its folder (made by :func:`start`): by :meth:`Server.stop`, or
    by the server itself when the run that started it is gone without stopping it."""
    for path in (socket_path, socket_path + ".binding"):
        Path(path).unlink(missing_ok=True)
    folder = os.path.dirname(socket_path)
    if os.path.basename(folder).startswith("lmia-warm-"):
        try:
            os.rmdir(folder)
        except OSError:
            pass


@dataclass
class Server:
    """A running warm worker: its process, socket and log."""

    process: subprocess.Popen
    socket_path: str
    log_path: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        remove_socket(self.socket_path)
        if os.environ.get(ENV) == self.socket_path:
            del os.environ[ENV]


def start(src: str, log_path: str, preload=PRELOAD) -> Server | None:
    """Start a warm worker for the jobs this process starts from now on (it sets
    ``LOTTERY_MIA_WARM`` here), unless ``LOTTERY_MIA_WARM=0`` turns it off.

    Returns at once: jobs started before it has imported run in their own process.
    """
    if os.environ.get(ENV) == "0":
        return None
    folder = tempfile.mkdtemp(prefix="lmia-warm-")  # short: a socket path has <= 107 bytes
    socket_path = os.path.join(folder, "socket")
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.pop(ENV, None)
    env["PYTHONPATH"] = os.pathsep.join([src] + [p for p in env.get("PYTHONPATH", "")
                                                 .split(os.pathsep) if p])
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "lottery_mia.jobs.warm", "--socket", socket_path,
             "--src", src, "--parent", str(os.getpid()), *preload],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True)  # Ctrl-C reaches the jobs, not the server
    os.environ[ENV] = socket_path
    return Server(process, socket_path, log_path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="The warm worker of a local run (started by "
                                 "the Snakefile; see lottery_mia.jobs.warm).")
    ap.add_argument("--socket", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("--parent", type=int)
    ap.add_argument("preload", nargs="*")
    args = ap.parse_args(argv)
    serve(args.socket, args.src, tuple(args.preload) or PRELOAD, parent=args.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
