"""make test installs nothing system-wide by itself; installing SLURM is opt-in (issue 10)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def dry_run(target: str, **env) -> str:
    # -o: treat the venv stamp as up to date (never reinstall here); -n: print, run nothing
    return subprocess.run(["make", "-n", "-o", ".venv/.installed", target], cwd=ROOT,
                          capture_output=True, text=True, check=True,
                          env={**os.environ, "LOTTERY_MIA_INSTALL_SLURM": "", **env}).stdout


def test_make_test_installs_no_system_packages_by_default():
    out = dry_run("test")
    assert "install-slurm" not in out and "apt-get" not in out
    assert "pytest" in out


def test_installing_slurm_is_opt_in():
    assert "install-slurm.sh" in dry_run("test", LOTTERY_MIA_INSTALL_SLURM="1")
    assert "install-slurm.sh" in dry_run("test-slurm")



def test_ci_runs_exactly_the_readme_test_command():
    commands = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    assert commands[-1] == "make test"
    assert "make test     # the test suite" in (ROOT / "README.md").read_text()
