"""The one layout: keys convert to folders and wildcards and back, nothing else builds paths."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from conftest import ROOT
from lottery_mia import layout as L
from lottery_mia.layout import ModelKey, StepKey, fmt_sparsity


def test_a_model_key_round_trips_through_its_folder_and_wildcards():
    key = ModelKey("digits", "resnet18", "seed-3", "oneshot", 0.8)
    assert key.folder == "results/digits/resnet18/seed-3/oneshot/sparsity-0.8"
    assert key.confidences == key.folder + "/confidences.parquet"
    assert key.attack_file(500, "scores.parquet") == key.folder + "/attack-n500/scores.parquet"
    assert ModelKey.from_wildcards(SimpleNamespace(**key.wildcards)) == key
    assert ModelKey.pattern().format(**key.wildcards) == key.folder
    assert ModelKey.attack_pattern(500, "metrics.json").format(**key.wildcards) == \
        key.attack_file(500, "metrics.json")
    dense = key.dense
    assert dense.folder == "results/digits/resnet18/seed-3/dense/sparsity-0" and dense.is_dense
    assert key.with_run("ref-1").folder == "results/digits/resnet18/ref-1/oneshot/sparsity-0.8"


def test_a_step_key_names_sparsity_or_round_folders():
    step = StepKey("digits", "resnet18", "seed-0", "imp", round=2)
    assert step.point == "round-2" and step.folder.endswith("/imp/round-2")
    assert StepKey.from_wildcards(SimpleNamespace(**step.wildcards)) == step
    assert StepKey.at("digits", "resnet18", "seed-0", "oneshot", "sparsity-0.5").sparsity == 0.5
    dense = StepKey.dense_of("digits", "resnet18", "seed-0")
    assert dense.folder == "results/digits/resnet18/seed-0/dense/sparsity-0"
    assert StepKey.pattern(L.MODEL_FILE, dense=True).format(
        dataset="digits", arch="resnet18", run="seed-0") == dense.file(L.MODEL_FILE)
    with pytest.raises(ValueError):
        StepKey("d", "a", "seed-0", "imp")  # neither a sparsity nor a round
    with pytest.raises(ValueError, match="step folder"):
        StepKey.at("d", "a", "seed-0", "imp", "epoch-3")


def test_sparsities_print_as_folders_do():
    assert fmt_sparsity(0) == "0" and fmt_sparsity(0.8) == "0.8" and fmt_sparsity(0.95) == "0.95"
    with pytest.raises(ValueError):
        fmt_sparsity(1.0)


def test_dataset_files_logs_and_records():
    assert L.membership("digits") == "results/digits/membership.parquet"
    assert L.membership("digits", "ref-2") == "results/digits/references/ref-2/membership.parquet"
    assert L.attack_sample("digits", 100) == "results/digits/attack_samples/n100.parquet"
    src = ModelKey("digits", "resnet18", "seed-0", "dense", 0.0)
    assert L.transfer_row(src, 500) == \
        "results/digits/transfer/seed-0/n500/resnet18_dense_sparsity-0.csv"
    assert L.log_for(L.summary("training.csv")) == "logs/summary/training.log"
    assert L.log_of(src.folder, "fit_attack") == \
        "logs/digits/resnet18/seed-0/dense/sparsity-0/fit_attack.log"


@pytest.mark.parametrize("rel, want", [
    ("digits/resnet18/seed-1/imp/round-3/train_ticket.tsv",
     {"rule": "train_ticket", "run": "seed-1", "method": "imp", "imp_round": 3,
      "sparsity": None}),
    ("digits/resnet50/ref-0/oneshot/sparsity-0.8/fit_attack.tsv",
     {"rule": "fit_attack", "arch": "resnet50", "run": "ref-0", "sparsity": 0.8}),
    ("digits/transfer/seed-0/n500/resnet18_random_reinit_sparsity-0.5.tsv",
     {"rule": "transfer_attack", "arch": "resnet18", "method": "random_reinit",
      "sparsity": 0.5, "n": 500}),
])
def test_benchmark_records_are_described_from_their_path(rel, want):
    got = L.describe_record(rel)
    for k, v in want.items():
        assert got[k] == v, (k, got)
    key = StepKey.at(*rel.split("/")[:5]) if "transfer" not in rel else None
    if key is not None:  # the inverse of benchmark_of
        assert L.benchmark_of(key.folder, got["rule"]) == f"results/benchmarks/{rel}"


def test_no_result_path_is_formatted_or_parsed_outside_the_layout():
    """Paths under results/ come from lottery_mia.layout: no other module or rule writes
    'results/' or a folder pattern like 'sparsity-{...}', and none parses one with a regex."""
    offenders = []
    files = [p for p in (ROOT / "src" / "lottery_mia").rglob("*.py") if p.name != "layout.py"]
    files += list((ROOT / "rules").glob("*.smk")) + [ROOT / "Snakefile"]
    for p in files:
        text = p.read_text()
        for pattern in (r"f\"results/", r"\"results/", r"sparsity-\{", r"round-\{",
                        r"attack-n\{", r"re\.(fullmatch|match|search)\(r\"\(?seed"):
            if re.search(pattern, text):
                offenders.append(f"{p.relative_to(ROOT)}: {pattern}")
    assert not offenders, offenders
