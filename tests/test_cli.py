"""The command line (lottery_mia.cli, the installed ``lottery-mia``): a bad input exits 2 with
one line naming the file and what is wrong; the installed command runs the audit. The
audit's own behaviour is tests/test_audit.py's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lottery_mia.cli import main
from test_audit import good_target


def test_command_line_errors_exit_2_with_the_message(tmp_path, capsys):
    path = tmp_path / "t.parquet"
    good_target().drop(columns="label").to_parquet(path, index=False)
    assert main(["audit", "--target", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lottery-mia audit: error: ") and "'label'" in err and \
        str(path) in err


def test_the_installed_command_runs_the_audit(tmp_path):
    """`make install` puts `lottery-mia` beside the interpreter (pyproject's
    [project.scripts]); its audit subcommand is the same entry point as the tests call."""
    exe = Path(sys.executable).with_name("lottery-mia")
    assert exe.exists(), "lottery-mia is not installed: rerun make install"
    target = good_target(n=200)
    path = tmp_path / "t.parquet"
    target.to_parquet(path)
    proc = subprocess.run([str(exe), "audit", "--target", str(path), "--out",
                           str(tmp_path / "out"), "--attacks", "loss", "--n-bootstrap", "200"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "report.html").exists()
