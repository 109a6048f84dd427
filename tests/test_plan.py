"""The plan of the grid, checked without Snakemake: what is trained, scored and attacked,
what each step reads, and the paper grid's counts."""

from __future__ import annotations

import copy

import pytest
import yaml

from conftest import ROOT, tiny_config
from lottery_mia import layout as L
from lottery_mia.config import load_config
from lottery_mia.layout import ModelKey, StepKey
from lottery_mia.plan import Plan
from lottery_mia.pruning import get_method


@pytest.fixture(scope="module")
def paper():
    return Plan(load_config(yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())))


@pytest.fixture(scope="module")
def tiny():
    return Plan(load_config(tiny_config()))


def test_the_paper_grid_counts(paper):
    cfg = paper.cfg
    reps, ref = len(cfg.replicates), cfg.references
    n_ref = ref.count * len(ref.datasets) * len(ref.architectures)
    methods = cfg.pruning.methods
    tickets = [s for s in cfg.sparsities if s > 0]
    rounds = get_method("imp", cfg.pruning.settings("imp")).rounds_for(max(tickets))
    steps = paper.steps()
    dense = [s for s in steps if s.is_dense]
    pruned = [s for s in steps if not s.is_dense]
    ref_tickets = n_ref * sum(1 for s in ref.sparsities if s > 0) * len(ref.methods)
    # 3 datasets x 2 architectures, and 6 defended CIFAR-10 entries (PPB x 3, DP-SGD x 3)
    # with ResNet18 only (datasets.<name>.architectures)
    grids = sum(len(g.architectures) for g in paper.grids.values())
    assert grids == 3 * 2 + 6
    assert len(dense) == grids * reps + n_ref  # every grid x seeds, plus references
    assert len(pruned) == grids * ((len(methods) - 1) * len(tickets) + rounds) * reps \
        + ref_tickets
    models = 1 + len(methods) * len(tickets)
    assert len(paper.models()) == grids * models * reps
    assert len(paper.reference_models()) == n_ref + ref_tickets
    # one fit-attack job per model: the CIFAR entries share a list of sample sizes,
    # ImageNet not
    assert [len(ds) for _, ds in paper.size_groups] == [8, 1]
    assert len(paper.transfer_rows()) == len(cfg.transfer.architectures) * \
        len(cfg.transfer.sparsities)
    assert len(paper.attack_results("metrics.json")) == sum(
        len(paper.grids[m.dataset].sample_sizes) for m in paper.models())


def test_every_step_is_planned_once_and_follows_its_dependencies(tiny):
    steps = tiny.steps()
    assert len(steps) == len(set(steps))
    planned = set(steps)
    for step in steps:
        if step.is_dense:
            continue
        inputs = tiny.mask_inputs(step)
        for path in inputs.values():
            if path.endswith((L.MODEL_FILE, L.MASK_FILE)) and "/dense/" not in path:
                folder = path.rsplit("/", 1)[0]
                assert any(s.folder == folder for s in planned), (step, path)


def test_imp_rounds_serve_the_sparsities_and_chain(tiny):
    # the tiny config: IMP at 0.6 per round; 0.5 -> round 1 (0.6), 0.8 -> round 2 (0.84)
    m5 = ModelKey("digits", "resnet18", "seed-0", "imp", 0.5)
    m8 = ModelKey("digits", "resnet18", "seed-0", "imp", 0.8)
    assert tiny.serving_step(m5).round == 1 and tiny.serving_step(m8).round == 2
    assert tiny.step_sparsity(tiny.serving_step(m8)) == pytest.approx(0.84)
    r2 = tiny.serving_step(m8)
    inputs = tiny.mask_inputs(r2)
    assert inputs["score_model"].endswith("imp/round-1/model.pt")
    assert inputs["base_mask"].endswith("imp/round-1/mask.pt")
    first = tiny.mask_inputs(tiny.serving_step(m5))
    assert first["score_model"].endswith("dense/sparsity-0/model.pt") and "base_mask" not in first
    assert tiny.network_identity(m8) == {"dataset": "digits", "arch": "resnet18", "seed": 0,
                                         "method": "imp", "sparsity": pytest.approx(0.84),
                                         "imp_round": 2}


def test_controls_build_on_the_oneshot_mask_and_start_states_follow_the_method(tiny):
    reinit = StepKey("digits", "resnet18", "seed-0", "random_reinit", sparsity=0.8)
    assert tiny.mask_inputs(reinit)["base_mask"] == \
        StepKey("digits", "resnet18", "seed-0", "oneshot", sparsity=0.8).file(L.MASK_FILE)
    assert tiny.ticket_inputs(reinit)["start"].endswith("dense/sparsity-0/init.pt")
    oneshot = StepKey("digits", "resnet18", "seed-0", "oneshot", sparsity=0.8)
    assert tiny.ticket_inputs(oneshot)["start"].endswith("dense/sparsity-0/rewind.pt")
    with pytest.raises(ValueError, match="iterative"):
        tiny.mask_inputs(StepKey("digits", "resnet18", "seed-0", "imp", sparsity=0.8))
    with pytest.raises(ValueError, match="not iterative"):
        tiny.mask_inputs(StepKey("digits", "resnet18", "seed-0", "oneshot", round=1))


def test_references_get_their_own_runs_seeds_and_splits(tiny):
    target = ModelKey("digits", "resnet18", "seed-0", "oneshot", 0.8)
    refs = tiny.references_of(target)
    assert [r.run for r in refs] == ["ref-0", "ref-1"]
    assert [tiny.seed_of(r.run) for r in refs] == [1000, 1001]
    assert tiny.membership(refs[1]) == L.membership("digits", "ref-1")
    assert "lira_online" in tiny.attacks_of(target)
    outside = ModelKey("digits", "resnet18", "seed-0", "oneshot", 0.5)
    assert tiny.references_of(outside) == [] and "lira_online" not in tiny.attacks_of(outside)
    inputs = tiny.attack_inputs(target)
    assert inputs["inclusion"] == L.inclusion("digits") and len(inputs["references"]) == 2


def test_job_params_are_canonical_and_say_what_not_how(tiny):
    step = StepKey.dense_of("digits", "resnet18", "seed-0")
    params = tiny.train_params(step)
    assert "num_workers" not in params["recipe"]  # how, not what
    assert list(params) == sorted(params) and list(params["recipe"]) == sorted(params["recipe"])
    assert tiny.how(step).device == "cpu"
    reordered = copy.deepcopy(tiny_config())
    reordered["training"]["digits"]["resnet18"] = dict(
        reversed(list(reordered["training"]["digits"]["resnet18"].items())))
    assert Plan(load_config(reordered)).train_params(step) == params


def test_report_groups_and_figure_inputs(tiny):
    groups = tiny.table1_groups()
    assert {(g.method, g.sample_size) for g in groups} == {
        (m, n) for m in ("dense", "oneshot") for n in (100, 200)}
    assert all(len(g.paths) == len(tiny.runs) for g in groups)
    fig5 = tiny.figure_inputs("figure5_attack_roc")
    assert fig5["scores"] and all(p.endswith("attack-n200/scores.parquet")
                                  for p in fig5["scores"])
    fig1 = tiny.figure_inputs("figure1_test_accuracy")
    assert fig1 == {"training": L.summary("training.csv"), "scores": []}
    assert tiny.figure_params("figure2_attack_vs_sparsity")["params"] == {
        "attack": "mlp", "figure2_sample_size": 200}
    assert list(tiny.figure_files()) == [f"figure{i}" for i in range(1, 12)]
    # Figure 10 reads the verdict table (a report table, not a summary)
    assert tiny.figure_inputs("figure10_leakage_at_gap") == {
        "verdicts": L.REPORT_TABLES["verdicts"], "scores": []}
    verdict_groups = tiny.verdict_groups()  # every model at every sample size
    assert {(g.method, g.sample_size) for g in verdict_groups} >= {
        (m, n) for m in ("dense", "oneshot", "imp", "random_reinit") for n in (100, 200)}
