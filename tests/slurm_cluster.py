"""Throw-away single-node SLURM cluster for the test suite (not a test module).

Usage::

    from slurm_cluster import slurm_available, start_cluster

    ok, reason = slurm_available()
    if not ok:
        pytest.skip(reason)
    with start_cluster(tmp_path / "slurm") as cluster:
        subprocess.run(["sbatch", "--wrap", "true"], env=cluster.env, check=True)

What it does, without systemd:

* writes its own ``slurm.conf`` into ``workdir`` (state, spool and log
  directories live there too, see :class:`SlurmCluster` for the one exception);
* symlinks ``/run/slurm/conf`` -> ``workdir/etc`` (the directory slurmd's
  "configless" mode uses; clients fall back to it when ``SLURM_CONF`` is
  unset).  This is needed because snakemake-executor-plugin-slurm-jobstep
  (0.6.1) strips ``SLURM_CONF`` from the environment of the nested
  ``srun`` it uses to run each rule inside the allocation; without the link
  that ``srun`` dies with "Could not establish a configuration source".  The
  link is removed by :meth:`SlurmCluster.stop`.  (If ``/etc/slurm/slurm.conf``
  exists it wins over the link and nested ``srun`` would talk to that
  cluster; ``nested_srun_ok`` is False then.);
* starts ``munged`` (unless a working munge daemon already answers on the
  default socket ``/run/munge/munge.socket.2``; the socket directory cannot be
  moved because ``slurmstepd`` and the client tools use the compiled-in path),
  then ``slurmctld -D`` and ``slurmd -D -N localhost`` as background children;
* waits until ``sinfo`` reports the node ``idle``;
* :meth:`SlurmCluster.stop` cancels remaining jobs and terminates every
  process it started **by PID** (plus leftover ``slurmstepd`` processes, which
  are recognised by a per-cluster marker in their environment, never by name).

The node is called ``localhost`` (``slurmd -N localhost``) because the
container hostname is arbitrary; the controller is registered under the real
short hostname with address 127.0.0.1.  Ports are picked free at start-up so
that a cluster never collides with a system SLURM.

Requirements: Linux, root (slurmd must run as root), the Debian packages
``slurmctld slurmd slurm-client munge`` (see ``.ci/install-slurm.sh``).
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SlurmCluster", "SlurmClusterError", "slurm_available", "start_cluster"]

PARTITION = "debug"
NODE_NAME = "localhost"
MUNGE_SOCKET_DIR = Path("/run/munge")
MUNGE_SOCKET = MUNGE_SOCKET_DIR / "munge.socket.2"
SYSTEM_MUNGE_KEY = Path("/etc/munge/munge.key")
# Where SLURM client tools look for slurm.conf when SLURM_CONF is unset: the
# compiled-in default first, then the "configless" cache directory of slurmd.
DEFAULT_SLURM_CONF = Path("/etc/slurm/slurm.conf")
CONFIGLESS_CONF_DIR = Path("/run/slurm/conf")
# Jobs stay visible to ``squeue`` for this long after finishing.  The
# snakemake SLURM executor only trusts ``squeue`` for status queries when
# MinJobAge >= 3 * init_seconds_before_status_checks (and needs >= 120 s to
# recommend it), otherwise it falls back to ``sacct``, which does not work
# without slurmdbd.
MIN_JOB_AGE = 300
_MARKER_VAR = "LOTTERY_MIA_TEST_SLURM_CLUSTER"
_SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
_DAEMONS = ("munged", "slurmctld", "slurmd")
_CLIENTS = ("sbatch", "squeue", "sinfo", "scontrol", "scancel", "srun", "munge", "unmunge")
# unix socket paths are limited to 107 bytes; slurmstepd puts
# "<SlurmdSpoolDir>/<node>_<jobid>.<stepid>" there.
_MAX_SPOOL_PATH = 60


class SlurmClusterError(RuntimeError):
    """The test cluster could not be started."""


def _which(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for d in _SBIN_DIRS:
        p = Path(d) / name
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    return None


def _path_env() -> str:
    parts = os.environ.get("PATH", "").split(os.pathsep)
    for d in _SBIN_DIRS:
        if d not in parts:
            parts.append(d)
    return os.pathsep.join(p for p in parts if p)


def slurm_available() -> tuple[bool, str]:
    """Return ``(True, "")`` if a local test cluster can be started here,
    else ``(False, reason)`` (use the reason as the pytest skip message)."""
    if os.name != "posix" or not Path("/proc").is_dir():
        return False, "SLURM test cluster needs Linux"
    if os.geteuid() != 0:
        return False, "SLURM test cluster needs root (slurmd must run as root)"
    missing = [b for b in _DAEMONS + _CLIENTS if _which(b) is None]
    if missing:
        return False, (
            "SLURM/munge not installed (missing: " + ", ".join(missing) + "); "
            "run .ci/install-slurm.sh"
        )
    if not SYSTEM_MUNGE_KEY.exists() and _which("mungekey") is None and not Path("/dev/urandom").exists():
        return False, "no munge key and no way to create one"
    return True, ""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 30) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(lines[-n:])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie counts as dead
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _munge_works(env: dict[str, str]) -> bool:
    try:
        enc = subprocess.run(["munge", "-n"], env=env, capture_output=True, timeout=10)
        if enc.returncode != 0:
            return False
        dec = subprocess.run(["unmunge"], input=enc.stdout, env=env, capture_output=True, timeout=10)
        return dec.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _ensure_munge_key(dest: Path) -> None:
    """Put a root-owned 0600 munge key at *dest* (copy of the system key,
    created first if the system has none)."""
    if not SYSTEM_MUNGE_KEY.exists():
        SYSTEM_MUNGE_KEY.parent.mkdir(parents=True, exist_ok=True)
        mungekey = _which("mungekey")
        if mungekey:
            subprocess.run([mungekey, "--create", "--keyfile", str(SYSTEM_MUNGE_KEY)], check=True, capture_output=True)
        else:
            SYSTEM_MUNGE_KEY.write_bytes(os.urandom(1024))
        os.chmod(SYSTEM_MUNGE_KEY, 0o600)
    shutil.copyfile(SYSTEM_MUNGE_KEY, dest)
    os.chmod(dest, 0o600)


@dataclass
class SlurmCluster:
    """A running single-node cluster.  ``env`` is ``os.environ`` plus
    ``SLURM_CONF`` (and ``/usr/sbin`` on ``PATH``); pass it to every SLURM
    client / snakemake subprocess.  ``partition`` is the (default) partition.

    ``spool_dir`` is inside ``workdir`` unless that path is too long for the
    unix sockets slurmstepd creates there; then it is a short temporary
    directory under /tmp that :meth:`stop` removes.
    """

    workdir: Path
    conf_path: Path
    env: dict[str, str]
    partition: str = PARTITION
    node: str = NODE_NAME
    cpus: int = 2
    mem_mb: int = 2048
    spool_dir: Path | None = None
    marker: str = ""
    #: False if a nested ``srun`` without SLURM_CONF (as run by the snakemake
    #: slurm-jobstep plugin) would not find this cluster's slurm.conf.
    nested_srun_ok: bool = True
    _conf_link: Path | None = field(default=None, repr=False)
    _procs: dict[str, subprocess.Popen] = field(default_factory=dict, repr=False)
    _own_spool: bool = field(default=False, repr=False)
    _stopped: bool = field(default=False, repr=False)

    # ------------------------------------------------------------------ helpers
    @property
    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self._procs.items()}

    @property
    def log_dir(self) -> Path:
        return self.workdir / "log"

    def run(self, *args: str, check: bool = True, timeout: float = 30, **kw) -> subprocess.CompletedProcess:
        """Run a SLURM client command with the cluster environment."""
        return subprocess.run(list(args), env=self.env, capture_output=True, text=True, check=check, timeout=timeout, **kw)

    def log_tails(self, n: int = 30) -> str:
        out = []
        for f in sorted(self.log_dir.glob("*.log")):
            out.append(f"----- {f} (last {n} lines) -----\n{_tail(f, n)}")
        return "\n".join(out)

    def node_state(self) -> str:
        r = self.run("sinfo", "-h", "-N", "-n", self.node, "-o", "%T", check=False, timeout=15)
        return r.stdout.strip() if r.returncode == 0 else f"<sinfo failed: {r.stderr.strip()}>"

    def wait_job(self, job_id: str | int, timeout: float = 120) -> str:
        """Wait until job *job_id* left the active states; return its final
        state as reported by ``squeue --states=all`` (e.g. ``COMPLETED``,
        ``FAILED``; finished jobs stay visible for MinJobAge seconds)."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            r = self.run("squeue", "-h", "--states=all", "-j", str(job_id), "-o", "%T", check=False, timeout=15)
            state = r.stdout.strip()
            if state and state not in ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED"):
                return state
            time.sleep(0.5)
        raise TimeoutError(f"SLURM job {job_id} not finished after {timeout}s (state {state!r})\n{self.log_tails()}")

    # -------------------------------------------------------------- lifecycle
    def _check_alive(self) -> None:
        for name, p in self._procs.items():
            if p.poll() is not None:
                raise SlurmClusterError(
                    f"{name} (pid {p.pid}) exited with code {p.returncode} during start-up\n{self.log_tails()}"
                )

    def _wait_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        resumed = False
        while time.monotonic() < deadline:
            self._check_alive()
            state = self.node_state()
            if state.startswith("idle"):
                return
            if not resumed and state.split("*")[0] in ("down", "drained", "draining"):
                self.run("scontrol", "update", f"nodename={self.node}", "state=resume", check=False)
                resumed = True
            time.sleep(0.5)
        raise SlurmClusterError(
            f"SLURM node {self.node!r} not idle after {timeout:.0f}s (last state {state!r}).\n{self.log_tails()}"
        )

    def stop(self, timeout: float = 30) -> None:
        """Cancel all jobs and stop every daemon this object started (by PID)."""
        if self._stopped:
            return
        self._stopped = True
        try:
            ctld = self._procs.get("slurmctld")
            if ctld is not None and ctld.poll() is None:
                # cancel what is left so slurmstepd/job processes go away cleanly
                ids = self.run("squeue", "-h", "-o", "%i", check=False, timeout=15).stdout.split()
                if ids:
                    self.run("scancel", *ids, check=False, timeout=15)
                    end = time.monotonic() + 15
                    while time.monotonic() < end:
                        r = self.run("squeue", "-h", "-t", "PD,R,CG,CF,S", "-o", "%i", check=False, timeout=15)
                        if r.returncode != 0 or not r.stdout.strip():
                            break
                        time.sleep(0.5)
        except (OSError, subprocess.SubprocessError):
            pass
        # slurmd first (it owns the job steps), then the controller (it stops
        # its own slurmscriptd child), then stragglers, then munge last.
        for name in ("slurmd", "slurmctld"):
            self._terminate(name, timeout)
        self._kill_marked(timeout)
        self._terminate("munged", timeout)
        self._remove_conf_link()
        if self._own_spool and self.spool_dir is not None:
            shutil.rmtree(self.spool_dir, ignore_errors=True)
        try:
            atexit.unregister(self.stop)
        except Exception:  # pragma: no cover
            pass

    def _link_conf(self) -> None:
        """Point /run/slurm/conf at our config dir (see module docstring)."""
        target = self.conf_path.parent
        link = CONFIGLESS_CONF_DIR
        try:
            if link.is_symlink():
                # stale link from a dead cluster, or from a live one we share
                # the machine with; ours wins for nested srun while we run
                link.unlink()
            if link.exists():
                # a real directory: genuine configless slurmd on this host
                self.nested_srun_ok = False
                return
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(target, target_is_directory=True)
            self._conf_link = link
        except OSError:
            self.nested_srun_ok = False
        if DEFAULT_SLURM_CONF.exists():
            self.nested_srun_ok = False

    def _remove_conf_link(self) -> None:
        link = self._conf_link
        if link is None:
            return
        try:
            if link.is_symlink() and Path(os.readlink(link)) == self.conf_path.parent:
                link.unlink()
        except OSError:
            pass
        self._conf_link = None

    def _terminate(self, name: str, timeout: float) -> None:
        p = self._procs.get(name)
        if p is None or p.poll() is not None:
            return
        try:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
        except ProcessLookupError:
            pass

    def _marked_pids(self) -> list[int]:
        """PIDs of processes (other than ourselves) whose environment carries
        this cluster's marker: slurmstepd and anything it left behind."""
        needle = f"{_MARKER_VAR}={self.marker}".encode()
        found = []
        own = os.getpid()
        for d in Path("/proc").iterdir():
            if not d.name.isdigit() or int(d.name) == own:
                continue
            try:
                env = (d / "environ").read_bytes()
            except OSError:
                continue
            if needle in env.split(b"\0"):
                found.append(int(d.name))
        return found

    def _kill_marked(self, timeout: float) -> None:
        if not self.marker:
            return
        # our own daemons are stopped explicitly (and in order) by stop()
        own = set(self.pids.values())
        pids = [p for p in self._marked_pids() if p not in own]
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = [p for p in pids if _pid_alive(p)]
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            end = time.monotonic() + (timeout if sig == signal.SIGTERM else 10)
            while time.monotonic() < end and any(_pid_alive(p) for p in pids):
                time.sleep(0.1)

    def __enter__(self) -> "SlurmCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _default_mem_mb() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                total = int(line.split()[1]) // 1024
                return max(512, min(8192, total // 2))
    except (OSError, ValueError, IndexError):
        pass
    return 2048


def _write_conf(c: SlurmCluster, ctld_port: int, slurmd_port: int) -> None:
    wd = c.workdir
    host = socket.gethostname().split(".")[0] or "localhost"
    def_mem = max(64, c.mem_mb // max(1, c.cpus))
    conf = f"""\
# Generated by tests/slurm_cluster.py -- single-node throw-away test cluster.
ClusterName=lotterymia
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
CryptoType=crypto/munge
StateSaveLocation={wd}/state
SlurmdSpoolDir={c.spool_dir}
SlurmctldPidFile={wd}/run/slurmctld.pid
SlurmdPidFile={wd}/run/slurmd.pid
SlurmctldLogFile={wd}/log/slurmctld.log
SlurmdLogFile={wd}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
# start batch jobs right away (default may delay them by up to 3 s)
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU={def_mem}
# keep finished jobs visible to squeue (snakemake's status command, no slurmdbd)
MinJobAge={MIN_JOB_AGE}
ReturnToService=2
# trust CPUs/RealMemory below even if they differ from the hardware
SlurmdParameters=config_overrides
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
NodeName={c.node} NodeAddr=127.0.0.1 NodeHostname={c.node} CPUs={c.cpus} RealMemory={c.mem_mb} State=UNKNOWN
PartitionName={c.partition} Nodes={c.node} Default=YES MaxTime=INFINITE State=UP
"""
    c.conf_path.write_text(conf)


def start_cluster(
    workdir: Path | str,
    cpus: int = 2,
    mem_mb: int | None = None,
    timeout: float = 60,
) -> SlurmCluster:
    """Start munged (if needed), slurmctld and slurmd; return when the node is
    idle.  Raises :class:`SlurmClusterError` (with daemon log tails) on
    failure; anything already started is stopped again in that case."""
    ok, reason = slurm_available()
    if not ok:
        raise SlurmClusterError(reason)
    workdir = Path(workdir).resolve()
    for sub in ("etc", "state", "run", "log", "munge"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    mem_mb = int(mem_mb) if mem_mb else _default_mem_mb()

    spool = workdir / "spool"
    own_spool = False
    if len(str(spool)) > _MAX_SPOOL_PATH:
        spool = Path(tempfile.mkdtemp(prefix="slurmspool-", dir="/tmp"))
        own_spool = True
    spool.mkdir(parents=True, exist_ok=True)

    marker = uuid.uuid4().hex
    conf_path = workdir / "etc" / "slurm.conf"
    env = dict(os.environ)
    # a surrounding SLURM allocation would confuse clients and snakemake
    for k in list(env):
        if k.startswith("SLURM_") or k.startswith("SBATCH_") or k.startswith("SALLOC_") or k.startswith("SRUN_"):
            del env[k]
    env["SLURM_CONF"] = str(conf_path)
    env["PATH"] = _path_env()
    cluster = SlurmCluster(
        workdir=workdir,
        conf_path=conf_path,
        env=env,
        cpus=int(cpus),
        mem_mb=mem_mb,
        spool_dir=spool,
        marker=marker,
        _own_spool=own_spool,
    )
    _write_conf(cluster, _free_port(), _free_port())
    atexit.register(cluster.stop)
    cluster._link_conf()
    daemon_env = dict(env)
    daemon_env[_MARKER_VAR] = marker

    def spawn(name: str, argv: list[str]) -> None:
        out = open(workdir / "log" / f"{name}.stdout.log", "ab")
        try:
            cluster._procs[name] = subprocess.Popen(
                argv,
                env=daemon_env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                start_new_session=True,  # no terminal signals from pytest
            )
        finally:
            out.close()

    try:
        # ---- munge (fixed socket dir /run/munge; reuse a working daemon)
        if not _munge_works(env):
            if MUNGE_SOCKET.exists():
                # stale socket of a dead daemon; munged refuses to start otherwise
                lock = MUNGE_SOCKET_DIR / "munge.socket.2.lock"
                for stale in (MUNGE_SOCKET, lock):
                    try:
                        stale.unlink()
                    except OSError:
                        pass
            MUNGE_SOCKET_DIR.mkdir(parents=True, exist_ok=True)
            os.chmod(MUNGE_SOCKET_DIR, 0o755)
            key = workdir / "munge" / "munge.key"
            _ensure_munge_key(key)
            spawn(
                "munged",
                [
                    _which("munged") or "munged",
                    "--foreground",
                    f"--key-file={key}",
                    f"--log-file={workdir / 'log' / 'munged.log'}",
                    f"--seed-file={workdir / 'munge' / 'munged.seed'}",
                    f"--pid-file={workdir / 'run' / 'munged.pid'}",
                ],
            )
            end = time.monotonic() + 15
            while not _munge_works(env):
                cluster._check_alive()
                if time.monotonic() > end:
                    raise SlurmClusterError("munged did not come up\n" + cluster.log_tails())
                time.sleep(0.2)

        # ---- controller, then compute daemon (both in the foreground, -D)
        spawn("slurmctld", [_which("slurmctld") or "slurmctld", "-D", "-i", "-f", str(conf_path)])
        end = time.monotonic() + timeout
        while cluster.run("scontrol", "ping", check=False, timeout=15).stdout.find("UP") < 0:
            cluster._check_alive()
            if time.monotonic() > end:
                raise SlurmClusterError("slurmctld did not answer 'scontrol ping'\n" + cluster.log_tails())
            time.sleep(0.3)
        spawn("slurmd", [_which("slurmd") or "slurmd", "-D", "-N", cluster.node, "-f", str(conf_path)])
        cluster._wait_idle(max(5.0, end - time.monotonic()))
    except BaseException:
        cluster.stop()
        raise
    return cluster
