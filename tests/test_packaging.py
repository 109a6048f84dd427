"""The package as a user installs it: a wheel of the library with its templates and the
``lottery-mia`` command, and the files a research tool ships (licence, citation, changes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import ROOT


def test_pip_install_into_a_fresh_venv_gives_a_working_command(tmp_path):
    """`pip install` of the built wheel into a fresh virtual environment: the library with
    its templates and the `lottery-mia` command, imported from the venv, not from this
    checkout. The dependencies (torch and the rest, gigabytes to download) come from this
    environment through a .pth file, as an index would provide them."""
    import sysconfig

    pip = [sys.executable, "-m", "pip"]
    build = subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                                  str(tmp_path / "dist"), str(ROOT)],
                           capture_output=True, text=True, cwd=tmp_path)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("lottery_mia-*.whl")
    venv = tmp_path / "venv"
    made = subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)],
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr[-2000:]
    python = venv / "bin" / "python"
    inst = subprocess.run(pip + ["--python", str(python), "install", "--no-deps", "-q",
                                 str(wheel)], capture_output=True, text=True)
    assert inst.returncode == 0, inst.stderr[-3000:]
    site = subprocess.run([str(python), "-c", "import sysconfig; "
                           "print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True).stdout.strip()
    (Path(site) / "deps-from-project-env.pth").write_text(sysconfig.get_paths()["purelib"])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run([str(python), "-c", "import lottery_mia, pathlib; "
                            "p = pathlib.Path(lottery_mia.__file__).parent; print(p); "
                            "print(sorted(x.name for x in (p / 'templates').iterdir()))"],
                           capture_output=True, text=True, env=env, cwd=tmp_path)
    assert where.returncode == 0, where.stderr[-2000:]
    assert where.stdout.splitlines()[0].startswith(str(venv))
    assert "report.html.j2" in where.stdout and "audit.html.j2" in where.stdout
    command = venv / "bin" / "lottery-mia"
    help_ = subprocess.run([str(command), "audit", "--help"], capture_output=True, text=True,
                           env=env, cwd=tmp_path)
    assert help_.returncode == 0, help_.stderr[-2000:]
    assert "--target" in help_.stdout and "--references" in help_.stdout


def test_the_licence_citation_and_changelog_ship_with_the_source():
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["license"] == "MIT"
    paper = cff["references"][0]
    assert paper["title"] == "Membership Inference Attacks on Lottery Ticket Networks"
    assert [a["family-names"] for a in paper["authors"]] == ["Bagmar", "Maiya", "Bidwalkar",
                                                             "Deshpande"]
    assert "2108.03506" in paper["url"]
    assert (ROOT / "CHANGELOG.md").read_text().startswith("# Changelog")
