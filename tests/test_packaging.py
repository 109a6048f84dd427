"""The package as a user installs it: a wheel of the library with its templates and the
``lottery-mia`` command, and the files a research tool ships (licence, citation, changes)."""

from __future__ import annotations

import os
import subprocess
import sys

import yaml

from conftest import ROOT


def test_a_wheel_installs_the_library_its_templates_and_the_command(tmp_path):
    pip = [sys.executable, "-m", "pip"]
    build = subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                                  str(tmp_path / "dist"), str(ROOT)],
                           capture_output=True, text=True, cwd=tmp_path)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("lottery_mia-*.whl")
    site = tmp_path / "site"
    inst = subprocess.run(pip + ["install", "--no-deps", "-q", "--target", str(site),
                                 str(wheel)], capture_output=True, text=True)
    assert inst.returncode == 0, inst.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)  # the installed copy, not the checkout's src/
    where = subprocess.run([sys.executable, "-c", "import lottery_mia, pathlib; "
                            "p = pathlib.Path(lottery_mia.__file__).parent; print(p); "
                            "print(sorted(x.name for x in (p / 'templates').iterdir()))"],
                           capture_output=True, text=True, env=env, cwd=tmp_path)
    assert where.returncode == 0, where.stderr[-2000:]
    assert str(site) in where.stdout.splitlines()[0]
    assert "report.html.j2" in where.stdout and "audit.html.j2" in where.stdout
    command = site / "bin" / "lottery-mia"
    assert command.exists()
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
