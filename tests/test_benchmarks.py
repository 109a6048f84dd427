"""benchmark_table: Snakemake's per-job benchmark records as one table (no torch), and a
small workflow run that writes them."""

import copy
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lottery_mia.benchmarks import benchmark_table
from lottery_mia.jobs.summarize import summarize_benchmarks

from conftest import run_snakemake, tiny_config, write_config

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def _write(path: Path, *seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(f"{s}\t0:00:01\t100.5\t200\t90\t95\t0.1\t0.2\t50.0\t{s}\n"
                                     for s in seconds))


def test_benchmark_table_names_rules_and_wildcards(tmp_path):
    b = tmp_path / "benchmarks"
    _write(b / "digits/resnet18/seed-0/dense/sparsity-0/train_dense.tsv", 12.5)
    _write(b / "digits/resnet18/seed-0/oneshot/sparsity-0.8/train_ticket.tsv", 10.0, 11.0)
    _write(b / "digits/resnet18/ref-1/oneshot/sparsity-0.8/extract_confidences.tsv", 1.5)
    _write(b / "digits/resnet50/seed-0/dense/sparsity-0/fit_attack.tsv", 2.0)
    _write(b / "digits/transfer/seed-0/n200/resnet50_random_reinit_sparsity-0.8.tsv", 0.5)
    _write(b / "digits/resnet18/seed-0/imp/round-3/train_ticket.tsv", 9.0)
    t = benchmark_table(b)
    assert len(t) == 7
    imp = t[t["imp_round"] == 3].iloc[0]
    assert (imp["rule"], imp["method"], imp["run"]) == ("train_ticket", "imp", "seed-0")
    assert sorted(set(t["rule"])) == ["extract_confidences", "fit_attack", "train_dense",
                                      "train_ticket", "transfer_attack"]
    dense = t[t["rule"] == "train_dense"].iloc[0]
    assert (dense["dataset"], dense["arch"], dense["sparsity"], dense["seconds"]) == (
        "digits", "resnet18", 0.0, 12.5)
    assert dense["method"] == "dense"
    ticket = t[(t["rule"] == "train_ticket") & (t["method"] == "oneshot")]
    assert list(ticket["repeat"]) == [0, 1] and set(ticket["sparsity"]) == {0.8}
    assert t.loc[t["rule"] == "extract_confidences", "run"].iloc[0] == "ref-1"
    assert set(t.loc[t["rule"] != "extract_confidences", "run"]) == {"seed-0"}
    attack = t[t["rule"] == "fit_attack"].iloc[0]
    assert (attack["arch"], attack["sparsity"], attack["method"]) == ("resnet50", 0.0, "dense")
    tr = t[t["rule"] == "transfer_attack"].iloc[0]
    assert (tr["arch"], tr["method"], tr["sparsity"], tr["n"]) == (
        "resnet50", "random_reinit", 0.8, 200)
    assert {"max_rss", "cpu_time", "mean_load"} <= set(t.columns)
    out = summarize_benchmarks(b, tmp_path / "summary" / "benchmarks.csv")
    assert (tmp_path / "summary" / "benchmarks.csv").exists() and len(out) == 7
    from lottery_mia.benchmarks import benchmark_overview

    over = benchmark_overview(out).set_index("rule")
    assert over.loc["train_ticket", "jobs"] == 3 and over.loc["train_ticket", "total_seconds"] == 30


def test_empty_directory_gives_an_empty_table(tmp_path):
    t = benchmark_table(tmp_path)
    assert t.empty and "seconds" in t.columns


def test_module_is_torch_free():
    src = Path(__file__).resolve().parents[1] / "src"
    code = ("import sys; sys.path.insert(0, %r); import lottery_mia.benchmarks; "
            "assert 'torch' not in sys.modules" % str(src))
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.slow
def test_jobs_leave_benchmark_records_and_the_summary_gathers_them(tmp_path):
    cfg = copy.deepcopy(tiny_config())
    cfg["architectures"] = ["resnet18"]
    cfg["sparsities"] = [0.0, 0.8]
    cfg["training"]["digits"]["resnet18"].update(epochs=1)
    cfg["attack"]["sample_sizes"] = [100]
    cfg["transfer"].update(sample_size=100, architectures=["resnet18"], sparsities=[0.0, 0.8])
    cfg["report"].update(figure2_sample_size=100)
    cfg["references"]["count"] = 0
    cfg["pruning"]["methods"] = ["oneshot"]
    write_config(tmp_path, cfg)
    run_snakemake(tmp_path, "--cores", "2", "results/summary/benchmarks.csv")
    table = pd.read_csv(tmp_path / "results" / "summary" / "benchmarks.csv")
    counts = table["rule"].value_counts().to_dict()
    assert counts == {"train_dense": 1, "train_ticket": 1, "extract_confidences": 2,
                      "fit_attack": 2, "transfer_attack": 2}, counts
    assert (table["seconds"] > 0).all() and table["max_rss"].notna().all()
    dense = table[table["rule"] == "train_dense"].iloc[0]
    assert (dense["dataset"], dense["arch"], dense["sparsity"]) == ("digits", "resnet18", 0.0)


def test_attack_scaling_benchmark_runs_and_ends_with_its_json(tmp_path):
    """benchmarks/attack_scaling.py --tiny on a config of two attacks: every measurement
    runs in its own process, the table is printed and the last line is the JSON with the
    ImageNet-model estimate (extrapolated from tiny sizes: a smoke test, not a figure)."""
    import json

    import yaml

    root = Path(__file__).resolve().parents[1]
    cfg = yaml.safe_load((root / "config" / "paper.yaml").read_text())
    cfg["attack"].update(models=["svm"], baselines=["loss"])
    cfg["references"]["count"] = 0
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, str(root / "benchmarks" / "attack_scaling.py"),
                           "--tiny", "--config", str(tmp_path / "config.yaml"),
                           "--src", str(root / "src")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["mode"] == "tiny"
    assert summary["imagenet_model_seconds"] > 0 and summary["peak_rss_gb"] > 0
    assert set(summary["parts_seconds"]) == {"attack:svm", "attack:loss", "bootstrap",
                                             "slices"}
    svm = [line for line in lines if line.startswith("attack:svm")]
    assert len(svm) == 2 and all("Nystroem" in line for line in svm)  # the at-scale regime


def test_a_forked_jobs_memory_and_cpu_time_come_from_its_log(tmp_path):
    """Under the warm worker, Snakemake's record measures the waiting process; the fork's
    peak RSS and CPU time, which the worker appends to the job's log, replace them."""
    b, logs = tmp_path / "results" / "benchmarks", tmp_path / "logs"
    rel = "digits/resnet18/seed-0/dense/sparsity-0"
    _write(b / rel / "train_dense.tsv", 12.5)
    _write(b / rel / "extract_confidences.tsv", 1.5)
    (logs / rel).mkdir(parents=True)
    (logs / rel / "train_dense.log").write_text(
        "# rule train_dense ... (forked by the warm worker)\ntraining...\n"
        "# warm worker: the job's peak RSS 612 MB (its pages shared with the worker "
        "included), CPU time 7.3 s; the benchmark record's max_rss and cpu_time are the "
        "waiting process's\n")
    (logs / rel / "extract_confidences.log").write_text("# rule extract_confidences\n")
    t = benchmark_table(b, logs).set_index("rule")
    assert t.loc["train_dense", "forked"] and not t.loc["extract_confidences", "forked"]
    assert (t.loc["train_dense", "max_rss"], t.loc["train_dense", "cpu_time"]) == (612, 7.3)
    assert t.loc["extract_confidences", "max_rss"] == 100.5  # its own record's
    assert not benchmark_table(b)["forked"].any()  # without the logs folder
