"""The report escapes everything it takes from config and data (issue 10, item 8)."""

from __future__ import annotations

import pandas as pd

from lottery_mia.report import write_report

EVIL = "<script>alert('x')</script>"


def test_the_report_escapes_config_and_data(tmp_path):
    from PIL import Image

    png = tmp_path / f"fig{EVIL.replace('/', '_')}.png"
    Image.new("RGB", (2, 2)).save(png)
    pd.DataFrame({"dataset": [EVIL], "accuracy": [0.5]}).to_csv(tmp_path / "t1.csv", index=False)
    pd.DataFrame({"dataset": [EVIL], "arch": [EVIL], "test_acc": [0.9]}).to_csv(
        tmp_path / "training.csv", index=False)
    pd.DataFrame({"dataset": [EVIL], "arch": [EVIL], "sparsity": [0.5], "sample_size": [100],
                  "accuracy": [0.6]}).to_csv(tmp_path / "attacks.csv", index=False)
    pd.DataFrame({"source_arch": [EVIL], "source_sparsity": [0.0], "target_arch": [EVIL],
                  "target_sparsity": [0.5], "accuracy": [0.5], "auc": [0.5]}).to_csv(
        tmp_path / "transfer.csv", index=False)
    out = tmp_path / "report.html"
    write_report(table1_csv=tmp_path / "t1.csv", training_csv=tmp_path / "training.csv",
                 attacks_csv=tmp_path / "attacks.csv", transfer_csv=tmp_path / "transfer.csv",
                 figures={"figure1": png}, config={"datasets": {EVIL: {"root": EVIL}}},
                 table1_arch=EVIL, table1_sparsity=0.8, output=out)
    html = out.read_text()
    assert "<script" not in html
    assert "&lt;script&gt;" in html
