"""Writing outputs (lottery_mia.io and the checkpoints written through it): every output
follows the umask (no 0600 files a group cannot read)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664)])
def test_outputs_follow_the_umask(tmp_path, mask, mode):
    import os
    import subprocess
    import sys
    import textwrap

    from conftest import SRC

    code = textwrap.dedent(f"""
        import os, sys
        os.umask({mask})
        sys.path.insert(0, {str(SRC)!r})
        import torch
        from lottery_mia.checkpoints import model_spec, save_checkpoint
        from lottery_mia.io import write_json
        from lottery_mia.networks import build_model
        write_json({{"a": 1}}, {str(tmp_path / "m.json")!r})
        spec = model_spec("resnet18", "digits", 4)
        save_checkpoint({str(tmp_path / "model.pt")!r}, build_model(**spec), spec)
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    for name in ("m.json", "model.pt"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == mode, name
