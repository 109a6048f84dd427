"""make test installs nothing system-wide; make test-full (what CI runs) installs SLURM and
Chromium and requires their tests to run (issues 10, 19)."""

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
                          env={**os.environ, **env}).stdout


def test_make_test_installs_no_system_packages_by_default():
    out = dry_run("test")
    assert "install-slurm" not in out and "apt-get" not in out
    assert "pytest" in out


def test_the_full_suite_installs_slurm_and_chromium_and_skips_neither():
    out = dry_run("test-full")
    assert "install-slurm.sh" in out and "install-browser.sh" in out
    assert "LOTTERY_MIA_REQUIRE_SYSTEM=1" in out and "pytest" in out


def test_ci_runs_the_readmes_full_test_command():
    commands = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    assert commands[-1] == "make test-full"
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## The two commands", 1)[1].split("```bash", 1)[1].split("```")[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make report", "make test"]  # exactly the two commands
    assert "make test-full" in readme  # what CI runs, named beside them
    tests_page = (ROOT / "docs" / "tests.md").read_text() + \
        (ROOT / "docs" / "running.md").read_text()
    assert "make test-full  # the whole suite, as CI runs it" in tests_page
