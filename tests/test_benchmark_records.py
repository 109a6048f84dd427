"""A small workflow run writes Snakemake's benchmark records and summarises them."""

import copy

import pandas as pd

from conftest import run_snakemake, tiny_config, write_config


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
