"""Formatting and environments: the Snakemake files are as the pinned snakefmt writes them,
and the conda environments pin exactly the versions of constraints.txt."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[_norm(name)] = version
    return pins


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_snakemake_files_are_formatted_by_the_pinned_snakefmt():
    exe = Path(sys.executable).with_name("snakefmt")
    if not exe.exists():
        pytest.fail("snakefmt is not installed: it is in the test extra (make install)")
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True).stdout
    assert _constraints()["snakefmt"] in version, version
    files = [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]
    proc = subprocess.run([str(exe), "--check", *map(str, files)], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 0, (f"run `.venv/bin/snakefmt Snakefile rules/`:\n"
                                  f"{proc.stdout}{proc.stderr}")


@pytest.mark.parametrize("env", ["analysis.yaml", "pytorch.yaml"])
def test_conda_environments_pin_the_versions_of_constraints(env):
    spec = yaml.safe_load((ROOT / "envs" / env).read_text())
    pip = [d for d in spec["dependencies"] if isinstance(d, dict)]
    assert len(pip) == 1 and "pip" in pip[0], "the packages come from PyPI, as constraints.txt"
    pins = _constraints()
    seen = set()
    for req in pip[0]["pip"]:
        name, sep, version = req.partition("==")
        assert sep, f"envs/{env}: {req!r} is not pinned exactly"
        assert pins.get(_norm(name)) == version, (
            f"envs/{env} pins {req}, constraints.txt {name}=={pins.get(_norm(name))}")
        seen.add(_norm(name))
    conda = [d for d in spec["dependencies"] if isinstance(d, str)]
    assert any(d.startswith("python=3.11") for d in conda)
    # every runtime dependency of the package, except the workflow engine itself (and the
    # networks' libraries, DP-SGD's included, for the analysis jobs)
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = {_norm(re.split(r"[<>=!~ ]", d)[0]) for d in deps} - {"snakemake"}
    if env == "analysis.yaml":
        wanted -= {"torch", "torchvision", "opacus"}
    assert wanted <= seen, f"envs/{env} lacks {sorted(wanted - seen)}"
