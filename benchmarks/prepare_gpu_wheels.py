"""Download, on a machine with PyPI, the wheels benchmarks/gpu_suite.py installs on a bare GPU
machine: one command there then needs no network.

    .venv/bin/python benchmarks/prepare_gpu_wheels.py        # fills gpu-wheels/

A GPU machine lent for the suite may hold torch, torchvision, numpy, pandas, pyarrow,
scikit-learn and matplotlib and nothing else. What the checks import beyond those is
``REQUIREMENTS`` of tests/gpu/gpu_checks.py (pydantic, safetensors, PyYAML, pytest); this
script downloads binary wheels of them and of everything they depend on into ``gpu-wheels/``
at the repository root, for CPython 3.10, 3.11, 3.12 and 3.13 on manylinux x86_64 (the
machine's Python is not known beforehand), at the versions constraints.txt pins where it
pins them (``pip download -c constraints.txt``). gpu_suite.py installs the ones that do not
import from there with ``pip install --no-index --find-links gpu-wheels --target .gpu-site``.

Running it again adds what is missing (pip skips files already there). It writes
``gpu-wheels/manifest.json`` (what was asked for, for which Pythons, the files) and prints one
JSON line: the folder, its files and size in bytes.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WHEELS = ROOT / "gpu-wheels"
CONSTRAINTS = ROOT / "constraints.txt"
PYTHONS = ("3.10", "3.11", "3.12", "3.13")
# manylinux2014 is manylinux_2_17 (glibc 2.17): pip accepts either spelling of a wheel's tag,
# and every GPU machine with a current CUDA driver has a newer glibc
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64")


def canonical(name: str) -> str:
    """A distribution name as PyPI compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements() -> list[str]:
    """The distributions the suite may have to install (tests/gpu/gpu_checks.py's
    ``REQUIREMENTS``), pinned to constraints.txt's version where it has one."""
    sys.path.insert(0, str(ROOT / "tests" / "gpu"))
    from gpu_checks import REQUIREMENTS

    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[canonical(name)] = version.strip()
    return [f"{dist}=={pins[canonical(dist)]}" if canonical(dist) in pins else dist
            for dist, _ in REQUIREMENTS]


def download(python: str, reqs: list[str], dest: Path) -> subprocess.CompletedProcess:
    """``pip download`` of ``reqs`` and their dependencies as CPython ``python`` binary
    wheels for manylinux x86_64, constrained by constraints.txt."""
    cmd = [sys.executable, "-m", "pip", "download", "--only-binary=:all:",
           "--python-version", python, "--implementation", "cp",
           *[a for p in PLATFORMS for a in ("--platform", p)],
           "--constraint", str(CONSTRAINTS), "--dest", str(dest),
           "--disable-pip-version-check", "--quiet", *reqs]
    return subprocess.run(cmd, capture_output=True, text=True)


def _wheel_fits(name: str, python: str) -> bool:
    """Whether wheel file ``name`` installs on CPython ``python`` on manylinux x86_64."""
    from packaging.tags import compatible_tags, cpython_tags
    from packaging.utils import parse_wheel_filename

    version = tuple(int(v) for v in python.split("."))
    want = set(cpython_tags(version, platforms=PLATFORMS))
    want |= set(compatible_tags(version, "cp" + "".join(map(str, version)), PLATFORMS))
    return bool(parse_wheel_filename(name)[3] & want)


def _metadata(wheel: Path) -> str:
    import zipfile

    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        return z.read(name).decode("utf-8", errors="replace")


def missing_dependencies(dest: Path, python: str) -> list[str]:
    """Dependencies of the wheels in ``dest`` that install on CPython ``python`` whose
    markers hold there but that have no wheel for it in ``dest``. pip download evaluates
    markers against the interpreter it runs on, not ``--python-version``: run on 3.11, it
    leaves out pytest's ``exceptiongroup`` and ``tomli``, which 3.10 needs."""
    from packaging.requirements import Requirement
    from packaging.utils import parse_wheel_filename

    env = {"python_version": python, "python_full_version": f"{python}.0",
           "implementation_name": "cpython", "platform_python_implementation": "CPython",
           "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
           "platform_machine": "x86_64", "extra": ""}
    wheels = [w for w in sorted(dest.glob("*.whl")) if _wheel_fits(w.name, python)]
    have = {canonical(str(parse_wheel_filename(w.name)[0])) for w in wheels}
    missing = []
    for wheel in wheels:
        for line in _metadata(wheel).splitlines():
            if not line.startswith("Requires-Dist:"):
                continue
            req = Requirement(line.split(":", 1)[1].strip())
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            if canonical(req.name) not in have and canonical(req.name) not in missing:
                missing.append(canonical(req.name))
    return [f"{name}" for name in missing]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dest", default=str(WHEELS), help="the wheels' folder (gpu-wheels/)")
    ap.add_argument("--python", nargs="+", default=list(PYTHONS),
                    help="CPython versions to fetch for (default 3.10 to 3.13)")
    args = ap.parse_args(argv)
    dest = Path(args.dest)
    dest.mkdir(parents=True, exist_ok=True)
    reqs = requirements()
    failed = {}
    for python in args.python:
        proc = download(python, reqs, dest)
        added = []
        for _ in range(5):  # what pip's markers left out, and then their dependencies
            extra = missing_dependencies(dest, python) if proc.returncode == 0 else []
            if not extra:
                break
            added += extra
            proc = download(python, extra, dest)
        if proc.returncode == 0 and missing_dependencies(dest, python):
            proc = subprocess.CompletedProcess(proc.args, 1, "", "dependencies still missing: "
                                               + ", ".join(missing_dependencies(dest, python)))
        print(f"CPython {python}: " + ("ok" if proc.returncode == 0 else "FAILED")
              + (f" (added for its markers: {', '.join(added)})" if added else ""), flush=True)
        if proc.returncode != 0:
            failed[python] = (proc.stderr.strip() or proc.stdout.strip())[-1000:]
    files = sorted(p.name for p in dest.glob("*.whl"))
    size = sum((dest / f).stat().st_size for f in files)
    (dest / "manifest.json").write_text(json.dumps(
        {"requirements": reqs, "pythons": [p for p in args.python if p not in failed],
         "platforms": list(PLATFORMS), "files": files}, indent=1) + "\n")
    print(json.dumps({"folder": str(dest), "requirements": reqs, "files": len(files),
                      "bytes": size, "failed": failed}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
