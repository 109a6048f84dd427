"""The report escapes everything it takes from config and data (issue 10, item 8)."""

from __future__ import annotations

import json

import pandas as pd

from lottery_mia.stats.metrics import POINT_METRICS
from lottery_mia.jobs.report import write_report

EVIL = "<script>alert('x')</script>"


def _with_ci(row: dict, metrics, suffix: str = "") -> dict:
    for m in metrics:
        row[f"{m}{suffix}"] = 0.6
        row[f"{m}_ci_low{suffix}"], row[f"{m}_ci_high{suffix}"] = 0.5, 0.7
    return row


def test_the_report_escapes_config_and_data(tmp_path):
    from PIL import Image

    png = tmp_path / f"fig{EVIL.replace('/', '_')}.png"
    Image.new("RGB", (2, 2)).save(png)
    t1 = {"dataset": EVIL, "sample_size": 100, "attack": EVIL, "verdict_dense": "at chance",
          "verdict_ticket": EVIL, "replicates_dense": 1, "replicates_ticket": 1}
    for side in ("_dense", "_ticket"):
        _with_ci(t1, ("accuracy", "precision"), side)
    pd.DataFrame([t1]).to_csv(tmp_path / "t1.csv", index=False)
    pd.DataFrame({"sentence": [EVIL, EVIL], "dataset": [EVIL, EVIL], "arch": [EVIL, EVIL],
                  "method": [EVIL, EVIL], "ticket_sparsity": [0.8, 0.8],
                  "sample_size": [100, 100], "attack": [EVIL, EVIL], "metric": ["auc", "auc"],
                  "primary": [True, False], "dense": [0.6, 0.6], "ticket": [0.6, 0.6],
                  "diff": [0.0, 0.0], "diff_ci_low": [-0.01, -0.01],
                  "diff_ci_high": [0.01, 0.01], "diff_at_gap": [0.0, float("nan")],
                  "diff_at_gap_ci_low": [-0.01, float("nan")],
                  "diff_at_gap_ci_high": [0.01, float("nan")], "margin": [0.03, 0.03],
                  "n_seeds": [3, 3], "scope": ["seeds and rows"] * 2, "p_holm": [0.9, 0.9],
                  "seeds_needed": [3.0, 3.0], "verdict": ["equivalent"] * 2}).to_csv(
        tmp_path / "verdicts.csv", index=False)
    models = {"dataset": EVIL, "sample_size": 100, "attack": EVIL, "kind": EVIL}
    for side in ("_dense", "_ticket"):
        _with_ci(models, ("accuracy", "auc", "tpr_at_fpr_0.1", "tpr_at_fpr_0.01",
                          "tpr_at_fpr_0.001"), side)
    models.update(n_eval_members=50, n_eval_nonmembers=50, min_fpr=0.02)
    pd.DataFrame([models]).to_csv(tmp_path / "models.csv", index=False)
    sl = _with_ci({"dataset": EVIL, "arch": EVIL, "method": EVIL, "sparsity": 0.0,
                   "sample_size": 100,
                   "attack": EVIL, "slice": "class", "value": EVIL, "n_members": 5,
                   "n_nonmembers": 5}, ("accuracy", "auc"))
    pd.DataFrame([sl]).to_csv(tmp_path / "slices.csv", index=False)
    (tmp_path / "gap.json").write_text(json.dumps({
        "attack": EVIL, "models": 4, "spearman_rho": 0.5, "spearman_rho_ci_low": 0.1,
        "spearman_rho_ci_high": 0.8, "p_value": 0.2}))
    tr = _with_ci({"dataset": EVIL, "arch": EVIL, "method": EVIL, "sparsity": 0.5,
                   "achieved_sparsity": 0.5, "method_kind": EVIL, "replicate": 0,
                   "train_acc": 1.0, "train_acc_ci_low": 0.9, "train_acc_ci_high": 1.0,
                   "generalization_gap": 0.1}, ("test_acc",))
    pd.DataFrame([tr]).to_csv(tmp_path / "training.csv", index=False)
    at = _with_ci({"dataset": EVIL, "arch": EVIL, "method": EVIL, "sparsity": 0.5,
                   "achieved_sparsity": 0.5, "replicate": "mean", "sample_size": 100, "attack": EVIL, "kind": EVIL,
                   "verdict_auc": EVIL, "threshold": 0.5, "n_eval_members": 50,
                   "n_eval_nonmembers": 50, "min_fpr": 0.02},
                  POINT_METRICS)
    pd.DataFrame([at]).to_csv(tmp_path / "attacks.csv", index=False)
    (tmp_path / "empty_mv.csv").write_text("")
    pd.DataFrame([_with_ci({"source_arch": EVIL, "source_method": EVIL,
                            "source_sparsity": 0.0, "target_arch": EVIL, "target_method": EVIL,
                            "target_sparsity": 0.5}, ("accuracy", "auc"))]).to_csv(
        tmp_path / "transfer.csv", index=False)
    pd.DataFrame({"rule": [EVIL], "seconds": [1.0], "max_rss": [10.0]}).to_csv(
        tmp_path / "benchmarks.csv", index=False)
    out = tmp_path / "report.html"
    pd.DataFrame({"sentence": [EVIL], "dataset": [EVIL]}).to_csv(tmp_path / "mv.csv",
                                                                  index=False)
    write_report(summary={"training": tmp_path / "training.csv",
                          "attacks": tmp_path / "attacks.csv",
                          "transfer": tmp_path / "transfer.csv",
                          "slices": tmp_path / "slices.csv",
                          "gap_correlation": tmp_path / "gap.json",
                          "benchmarks": tmp_path / "benchmarks.csv"},
                 report_tables={"table1_csv": tmp_path / "t1.csv",
                                "verdicts": tmp_path / "verdicts.csv",
                                "attack_models": tmp_path / "models.csv",
                                "method_verdicts": tmp_path / "empty_mv.csv"},
                 figures={"figure1": png, "figure7": png},
                 config={"datasets": {EVIL: {"root": EVIL}}},
                 values={"attack": EVIL, "arch": EVIL, "method": EVIL, "table1_sparsity": 0.8,
                         "primary": {"attack": EVIL, "metric": "auc", "sample_size": None}},
                 methods=[{"name": EVIL, "kind": EVIL, "description": EVIL}], output=out)
    html = out.read_text()
    assert "<script" not in html
    assert html.count("&lt;script&gt;") >= 10


def test_the_verdict_view_says_what_would_decide_an_inconclusive_row():
    import numpy as np
    import pandas as pd

    from lottery_mia.reporting.report import verdicts_view

    rows = pd.DataFrame({
        "dataset": "d", "arch": "a", "method": "oneshot", "ticket_sparsity": 0.8,
        "sample_size": 500, "attack": "lira_online", "metric": "auc", "dense": 0.6,
        "ticket": 0.6, "diff": 0.0, "diff_ci_low": -0.1, "diff_ci_high": 0.1,
        "diff_at_gap": np.nan, "diff_at_gap_ci_low": np.nan, "diff_at_gap_ci_high": np.nan,
        "n_seeds": 3, "scope": "seeds and rows", "margin": 0.03, "p_holm": 1.0,
        "power": 0.01, "verdict": ["inconclusive", "inconclusive", "inconclusive",
                                   "equivalent"],
        "seeds_needed": [np.inf, 7.0, np.nan, 3.0]})
    view = verdicts_view(rows)
    assert list(view["seeds to decide"]) == ["more rows", "~7", "n/a", ""]
    assert list(view["power"]) == ["1%"] * 4
