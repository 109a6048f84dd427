"""The workflow for real: a full run on a tiny config, config errors, incremental reruns."""

from __future__ import annotations

import base64
import copy
import re
from pathlib import Path

import numpy as np
import pandas as pd

import pytest

import browser
from conftest import planned_jobs, run_snakemake, tiny_config, write_config
from lottery_mia.figures import figure_specs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("run")
    write_config(work, tiny_config())
    proc = run_snakemake(work, "--cores", "2")
    return work, proc


def test_full_run_writes_the_report_with_table1_and_all_figures(finished_run):
    work, proc = finished_run
    report = (work / "results" / "report.html").read_text()
    assert "Table 1" in report and "Verdicts" in report and "Attack models" in report
    assert "Tickets and their controls" in report
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', report)
    assert len(images) == len(figure_specs())
    for img in images:
        assert base64.b64decode(img)[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Spearman" in report
    t1 = pd.read_csv(work / "results" / "report" / "table1.csv")
    assert list(t1.sample_size) == [100, 200]
    v = pd.read_csv(work / "results" / "report" / "verdicts.csv")
    assert {"primary", "family", "verdict", "n_seeds", "diff", "diff_ci_low", "diff_ci_high",
            "seeds_needed", "diff_at_gap", "diff_at_gap_ci_low",
            "diff_at_gap_ci_high"} <= set(v.columns)
    # one primary comparison per pruned model, at the largest sample size
    primary = v[v["primary"]]
    assert len(primary) == len(primary.drop_duplicates(["arch", "method", "ticket_sparsity"]))
    assert set(primary["sample_size"]) == {200} and set(primary["metric"]) == {"auc"}
    assert report.index('id="primary"') < report.index("Table 1")
    for side in ("dense", "ticket"):
        assert t1[f"accuracy_{side}"].between(0, 1).all()
        assert (t1[f"accuracy_ci_low_{side}"] <= t1[f"accuracy_{side}"]).all()
        assert (t1[f"accuracy_{side}"] <= t1[f"accuracy_ci_high_{side}"]).all()
        assert t1[f"test_acc_{side}"].between(0, 1).all()  # the models' test accuracy
    md = (work / "results" / "report" / "table1.md").read_text()
    assert re.search(r"0\.\d{3} \[0\.\d{3}, 0\.\d{3}\]", md)
    training = pd.read_csv(work / "results" / "summary" / "training.csv")
    # 2 dense networks + 2 architectures x 3 methods x 2 sparsities
    assert len(training) == 14 and training.test_acc.between(0, 1).all()
    assert (training.test_acc_ci_low <= training.test_acc).all()
    assert set(training.method) == {"dense", "oneshot", "imp", "random_reinit"}
    assert set(training[training.method == "random_reinit"].method_kind) == {"control"}
    ticket = training[(training.sparsity == 0.8) & (training.method != "imp")]
    assert (ticket.measured_sparsity_prunable - 0.8).abs().max() < 1e-4
    assert (ticket.achieved_sparsity - 0.8).abs().max() < 1e-4
    imp = training[training.method == "imp"].set_index("sparsity")
    # IMP at 0.6 a round: 0.5 is served by round 1 (0.6), 0.8 by round 2 (0.84)
    assert set(imp.loc[0.5, "imp_round"]) == {1} and set(imp.loc[0.8, "imp_round"]) == {2}
    assert (imp.loc[0.5, "achieved_sparsity"] - 0.6).abs().max() < 1e-4
    assert (imp.loc[0.8, "achieved_sparsity"] - 0.84).abs().max() < 1e-4
    attacks = pd.read_csv(work / "results" / "summary" / "attacks.csv", dtype={"replicate": str})
    n_attacks = 10  # 5 attack models + 5 threshold baselines (quantile among them)
    # 14 models x 2 sample sizes x 10 attacks, pair_mlp on the 12 pruned ones, plus the 5
    # reference attacks (SAMIA among them) on resnet18 at sparsity 0 and the oneshot ticket
    # at 0.8 and pair_lira on that ticket; per replicate (1) and their mean
    assert len(attacks) == (14 * 2 * n_attacks + 12 * 2 + 2 * (5 + 6)) * 2
    assert set(attacks.loc[attacks.attack == "pair_mlp", "method"]) == {
        "oneshot", "imp", "random_reinit"}  # never on a dense network
    assert set(zip(*[attacks.loc[attacks.attack == "pair_lira", k] for k in
                     ("arch", "method", "sparsity")])) == {("resnet18", "oneshot", 0.8)}
    assert set(attacks.replicate) == {"0", "mean"}
    assert set(attacks.attack) == {"mlp", "svm", "random_forest", "logistic_regression",
                                   "gradient_boosting", "loss", "confidence", "entropy",
                                   "modified_entropy", "lira_online", "lira_offline", "rmia",
                                   "shadow_mlp", "pair_mlp", "pair_lira", "quantile",
                                   "samia"}
    q = attacks[(attacks.attack == "quantile") & (attacks.replicate == "0")]
    # fit on the scored non-members outside each attack sample: 300 - n/2
    assert (q.public_rows == 300 - q.sample_size // 2).all()
    assert (attacks.loc[attacks.replicate == "0", "attack_seconds"] >= 0).all()
    ref_rows = attacks[attacks.attack == "lira_online"]
    assert set(ref_rows.arch) == {"resnet18"} and set(ref_rows.sparsity) == {0.0, 0.8}
    # SAMIA's sensitivity is scored on the reference grid's models and references only
    from lottery_mia.confidences import read_confidences

    models = work / "results" / "digits"
    for path, has in (("resnet18/seed-0/dense/sparsity-0", True),
                      ("resnet18/ref-1/oneshot/sparsity-0.8", True),
                      ("resnet18/seed-0/oneshot/sparsity-0.5", False),
                      ("resnet50/seed-0/dense/sparsity-0", False)):
        t = read_confidences(models / path / "confidences.parquet")
        assert (t.sensitivity is not None) == has, path
        assert not has or (t.sensitivity.shape == t.logits.shape
                           and t.metadata["sensitivity"]["draws"] == 10)
    assert set(ref_rows.method) == {"dense", "oneshot"}
    imp_rows = attacks[(attacks.method == "imp") & (attacks.sparsity == 0.8)]
    assert (imp_rows.achieved_sparsity - 0.84).abs().max() < 1e-4
    for m in ("accuracy", "precision", "recall", "auc", "advantage", "tpr_at_fpr_0.1"):
        rows = attacks[attacks[m].notna()]
        assert (rows[f"{m}_ci_low"] <= rows[m] + 1e-12).all(), m
        assert (rows[m] <= rows[f"{m}_ci_high"] + 1e-12).all(), m
    # who was evaluated on what: the classifier and threshold attacks on the attack-test
    # fold (n/4 non-members), the reference attacks on every row their references can judge
    # (the pool is every scored row here: 300 + 300) less the attack-train fold (n/4 each)
    one = attacks[attacks.replicate == "0"]
    ref = one.kind == "reference"
    assert (one.loc[ref, "n_eval_nonmembers"] == 300 - one.loc[ref, "sample_size"] // 4).all()
    assert (one.loc[ref, "n_eval_members"] == 300 - one.loc[ref, "sample_size"] // 4).all()
    assert (one.loc[ref, "n_unjudged"] == 0).all()
    assert (one.loc[~ref, "n_eval_nonmembers"] == one.loc[~ref, "sample_size"] // 4).all()
    assert np.allclose(one.min_fpr, 1 / one.n_eval_nonmembers)
    # a TPR at FPR x only where 10 non-members lie strictly above its cut: at 10% for
    # LiRA's continuous scores on 250-275 non-members (RMIA's shares and the shadow MLP's
    # probabilities can tie at the cut, and are then n/a), never at 1% or 0.1% here
    lira = one.attack.isin(["lira_online", "lira_offline"])
    assert one.loc[lira, "tpr_at_fpr_0.1"].notna().all()
    assert one.loc[~ref, "tpr_at_fpr_0.1"].isna().all()
    assert one["tpr_at_fpr_0.01"].isna().all() and one["tpr_at_fpr_0.001"].isna().all()
    assert (one.loc[ref, "n_references"] == 2).all()
    verdicts = pd.read_csv(work / "results" / "report" / "verdicts.csv")
    assert {"auc", "balanced_accuracy"} <= set(verdicts.metric) <= {
        "auc", "balanced_accuracy", "tpr_at_fpr_0.1", "tpr_at_fpr_0.01", "tpr_at_fpr_0.001"}
    # every pruned model against its dense network, the reference attacks where they ran
    assert {"mlp", "loss"} <= set(verdicts.attack)
    ref_rows = verdicts[verdicts.attack == "lira_online"]
    assert set(zip(ref_rows.arch, ref_rows.method, ref_rows.ticket_sparsity)) == {
        ("resnet18", "oneshot", 0.8)}
    assert {"verdict", "n_seeds", "diff", "diff_ci_low", "diff_ci_high"} <= set(verdicts)
    # one seed: no verdict (the interval describes these networks only), and it says so
    assert (verdicts.n_seeds == 1).all() and (verdicts.scope == "these networks").all()
    assert (verdicts.verdict == "inconclusive").all() and verdicts.p_holm.isna().all()
    assert verdicts.sentence.str.contains("95% CI").all()
    assert verdicts.sentence.str.contains("fewer than 3 seeds there is no verdict").all()
    mv = pd.read_csv(work / "results" / "report" / "method_verdicts.csv")
    # each ticket method vs the control, and imp vs oneshot, at both sparsities
    assert set(zip(mv.method, mv.versus)) == {("oneshot", "random_reinit"),
                                              ("imp", "random_reinit"), ("imp", "oneshot")}
    assert set(mv.sparsity) == {0.5, 0.8} and set(mv.metric) == {"balanced_accuracy", "auc"}
    assert (mv.diff_ci_low <= mv["diff"]).all() and (mv["diff"] <= mv.diff_ci_high).all()
    models = pd.read_csv(work / "results" / "report" / "attack_models.csv")
    assert len(models) == n_attacks + 5 + 2  # the 5 reference attacks, the two pair attacks
    pairs = pd.read_csv(work / "results" / "report" / "pair_verdicts.csv")
    primary = pairs[pairs.primary]  # AUC at n = 200: pair_mlp on the 12 pruned networks
    assert sorted(zip(primary.attack, primary.versus_attack)) == \
        [("pair_lira", "lira_online")] + [("pair_mlp", "mlp")] * 12  # pair_lira on one
    assert set(primary.sample_size) == {200} and set(primary.stronger) <= {"dense", "ticket"}
    assert (primary.diff_ci_low <= primary["diff"]).all()
    assert np.allclose(primary["diff"], primary.pair - primary.single)
    assert "Publishing the ticket beside its dense parent" in report
    fitted = models.set_index("attack")["fit_dense"]  # small samples: the exact SVC
    assert fitted["svm"] == "SVC" and fitted["mlp"].startswith("MLPClassifier")
    assert fitted["gradient_boosting"] == "HistGradientBoostingClassifier"
    assert pd.isna(fitted["loss"])
    slices = pd.read_csv(work / "results" / "summary" / "slices.csv")
    assert set(slices.slice) >= {"class"} and slices.value.nunique() >= 10
    transfer = pd.read_csv(work / "results" / "summary" / "transfer.csv")
    assert len(transfer) == 16  # 4 models, every ordered pair, diagonal included
    assert {"accuracy_ci_low", "accuracy_ci_high"} <= set(transfer.columns)
    for n in range(1, 10):
        assert list((work / "results" / "report").glob(f"figure{n}_*.png"))
    # each reference trained and was scored on exactly its half of the pool
    inclusion = pd.read_parquet(work / "results" / "digits" / "references" /
                                "inclusion.parquet")
    for k in range(2):
        conf = pd.read_parquet(work / "results" / "digits" / "resnet18" / f"ref-{k}" /
                               "oneshot" / "sparsity-0.8" / "confidences.parquet",
                               columns=["sample_id", "member"])
        mine = inclusion[inclusion.reference == k].set_index("sample_id")["included"]
        assert (conf.set_index("sample_id")["member"] == mine.loc[conf.sample_id].values).all()
        log = (work / "logs" / "digits" / "resnet18" / f"ref-{k}" / "dense" / "sparsity-0" /
               "train_dense.log").read_text()
        assert f"{int(mine.sum())} members (training set)" in log
    # every job left a log, with per-epoch progress for training
    log = (work / "logs" / "digits" / "resnet18" / "seed-0" / "dense" / "sparsity-0" /
           "train_dense.log").read_text()
    assert "epoch 2/2" in log and "test_acc=" in log
    assert re.search(r"epoch 1/2 .*; elapsed \d+s, ETA \d+s", log)  # time left in the job
    assert not list((work / "results").rglob("*.pkl"))


def test_the_run_says_where_its_report_is(finished_run):
    work, proc = finished_run
    assert f"The report of this run: {work / 'results' / 'report.html'}" in (
        proc.stdout + proc.stderr)


def test_snakemakes_own_report_holds_every_figure_and_table(finished_run, tmp_path):
    """`snakemake --report report.zip` carries the figures (captioned with their titles), the
    report's tables, the summaries and the HTML report, each in its category."""
    import zipfile

    from lottery_mia.figures import figure_specs

    work, _ = finished_run
    out = tmp_path / "report.zip"
    run_snakemake(work, "--report", str(out))
    with zipfile.ZipFile(out) as z:
        names = z.namelist()  # <stem>/report.html and <stem>/data/raw/<hash>/<file>
        files = {n.rsplit("/", 1)[1] for n in names if "/data/raw/" in n}
        (index,) = [n for n in names if n.count("/") == 1 and n.endswith("/report.html")]
        text = z.read(index).decode("utf-8", "replace")  # Snakemake's page, not ours
    for spec in figure_specs():
        assert spec.file in files, spec.file
        assert spec.title in text, spec.title  # the caption
    assert {"table1.csv", "table1.md", "verdicts.csv", "method_verdicts.csv",
            "attack_models.csv", "training.csv", "attacks.csv", "report.html"} <= files
    for category in ("Figures", "Tables", "Summaries", "Report"):
        assert category in text, category
    assert "lottery-mia: membership-inference attacks on lottery-ticket" in text


@pytest.mark.needs_system(browser.chromium() is not None,
                          "Chromium unavailable: run .ci/install-browser.sh")
def test_the_report_fits_a_1400px_window_and_every_image_loads(finished_run, tmp_path):
    """Rendered by headless Chromium in a 1400-px window: nothing reaches past its right
    edge (the page never scrolls sideways) and every figure loads."""
    work, _ = finished_run
    seen = browser.measure(work / "results" / "report.html", tmp_path, width=1400)
    assert seen["innerWidth"] == 1400
    assert seen["images"] == len(figure_specs()) and seen["broken"] == 0, seen
    assert seen["scrollWidth"] <= 1400 and not seen["wide"], seen


@pytest.mark.needs_system(browser.chromium() is not None,
                          "needs Chromium (.ci/install-browser.sh)")
def test_the_report_opens_with_the_answer(finished_run, tmp_path):
    """The summary block (id="summary") is in the page's first 20 kB; the verdict on the
    paper's claim (the primary comparisons counted) is on the first screen of a 1400 x 900
    window and the primary comparisons' table starts there; the tables and figures follow,
    behind a table of contents."""
    work, _ = finished_run
    html = (work / "results" / "report.html").read_text()
    assert 0 <= html.index('id="summary"') < 20_000
    head = html[html.index('id="summary"'):html.index('id="contents"')]
    assert "This run" in head and "What this run can and cannot say" in head
    assert "The strongest attack" in head and "balanced accuracy" in head
    seen = browser.measure(work / "results" / "report.html", tmp_path, width=1400,
                           height=900)
    assert seen["summaryTop"] is not None and seen["summaryTop"] < 200, seen
    # the verdict on the paper's claim (every primary comparison counted) in full, and the
    # table of the primary comparisons starting, on the first screen
    assert seen["claimBottom"] is not None and seen["claimBottom"] <= 900, seen
    assert seen["primaryTop"] is not None and seen["primaryTop"] < 900, seen


def test_a_local_run_forks_its_jobs_from_the_warm_worker(finished_run):
    """The jobs of a local run start as forks of the warm worker (lottery_mia.jobs.warm),
    except those that start before it has imported; it is stopped at the end."""
    work, _ = finished_run
    log = (work / "logs" / "warm_worker.log").read_text()
    socket_path = re.search(r"serving (\S+)", log).group(1)
    assert not Path(socket_path).exists()  # stopped and cleaned up
    headers = [p.read_text().split("\n", 1)[0] for p in (work / "logs").rglob("*.log")
               if p.name != "warm_worker.log"]
    forked = [h for h in headers if h.endswith("(forked by the warm worker)")]
    assert len(forked) >= 0.75 * len(headers), (len(forked), len(headers))


def test_a_finished_run_leaves_no_locks_and_files_a_group_can_read(finished_run):
    import os

    work, _ = finished_run
    assert not list((work / "results").rglob(".lock"))
    umask = os.umask(0o022)
    os.umask(umask)
    want = 0o666 & ~umask
    modes = {f: f.stat().st_mode & 0o777 for f in (work / "results").rglob("*") if f.is_file()}
    wrong = {str(f): oct(m) for f, m in modes.items() if m != want}
    assert not wrong, list(wrong.items())[:5]


def test_a_dense_network_copied_into_a_tickets_folder_is_refused(finished_run, tmp_path):
    """The replaced file keeps the ticket's mtime, so Snakemake sees nothing to redo but the
    deleted confidence table: the scoring job must refuse the network instead of reporting
    it as a ticket."""
    import os
    import shutil

    work, _ = finished_run
    copy_ = tmp_path / "run"
    shutil.copytree(work, copy_, symlinks=True)
    base = copy_ / "results" / "digits" / "resnet18" / "seed-0"
    ticket = base / "oneshot" / "sparsity-0.8"
    st = (ticket / "model.pt").stat()
    shutil.copy2(base / "dense" / "sparsity-0" / "model.pt", ticket / "model.pt")
    os.utime(ticket / "model.pt", ns=(st.st_atime_ns, st.st_mtime_ns))
    (ticket / "confidences.parquet").unlink()
    proc = run_snakemake(copy_, "--cores", "1", str(ticket.relative_to(copy_) /
                                                    "confidences.parquet"), check=False)
    assert proc.returncode != 0
    log = (copy_ / "logs" / "digits" / "resnet18" / "seed-0" / "oneshot" / "sparsity-0.8" /
           "extract_confidences.log").read_text()
    assert "method='dense'" in log and "method='oneshot'" in log and "delete it" in log
    assert not (ticket / "confidences.parquet").exists()


def test_a_scores_table_swapped_between_two_models_is_refused(finished_run, tmp_path):
    """Two models' attack scores swapped by hand keep their mtimes, so Snakemake sees only
    the deleted tables to redo: the tables job must refuse them (naming the file and what
    differs) instead of writing the other model's verdicts."""
    import os
    import shutil

    work, _ = finished_run
    copy_ = tmp_path / "run"
    shutil.copytree(work, copy_, symlinks=True)
    base = copy_ / "results" / "digits" / "resnet18" / "seed-0"
    dense = base / "dense" / "sparsity-0" / "attack-n200" / "scores.parquet"
    ticket = base / "oneshot" / "sparsity-0.8" / "attack-n200" / "scores.parquet"
    stats = [p.stat() for p in (dense, ticket)]
    tmp = tmp_path / "swap.parquet"
    shutil.copy2(dense, tmp)
    shutil.copy2(ticket, dense)
    shutil.copy2(tmp, ticket)
    for p, st in zip((dense, ticket), stats):
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    verdicts = copy_ / "results" / "report" / "verdicts.csv"
    before = verdicts.read_text()
    verdicts.unlink()
    proc = run_snakemake(copy_, "--cores", "1", "results/report/verdicts.csv", check=False)
    assert proc.returncode != 0
    logs = "".join(p.read_text() for p in (copy_ / "logs").rglob("*.log")
                   if "scores.parquet" in p.read_text())
    assert "scores.parquet holds the attack scores of the model with" in logs
    assert "delete it and rerun the fit_attack rule" in logs
    assert not verdicts.exists() and before


def test_unchanged_config_reruns_nothing(finished_run):
    work, _ = finished_run
    proc = run_snakemake(work, "-n", "--cores", "2")
    assert planned_jobs(proc.stdout + proc.stderr) == {}
    assert "Nothing to be done" in proc.stdout + proc.stderr


def dry_run_with(work, cfg) -> dict[str, int]:
    write_config(work, cfg)
    try:
        proc = run_snakemake(work, "-n", "--cores", "2")
    finally:
        write_config(work, tiny_config())
    return planned_jobs(proc.stdout + proc.stderr)


COMPUTING_RULES = ("membership_split", "reference_split", "attack_sample", "train_dense",
                   "prune_mask", "train_ticket", "extract_confidences", "fit_attack",
                   "transfer_attack")

# Settings that say how or where jobs run, never what they compute (and values written out
# that a null already stands for): changing one on a finished run reruns no computing job.
HOW_CHANGES = {
    "runtime.train_minutes": lambda c: c["runtime"].update(train_minutes=60),
    "runtime.gpu_slots": lambda c: c["runtime"].update(gpu_slots=3),
    "runtime.cuda_graphs": lambda c: c["runtime"].update(cuda_graphs=False),
    "threads.train": lambda c: c["threads"].update(train=2),
    "threads.confidences": lambda c: c["threads"].update(confidences=2),
    "device cpu -> auto": lambda c: c.update(device="auto"),
    "datasets.digits.root": lambda c: c["datasets"]["digits"].update(root="/data/unused"),
    "scored_members null -> 300": lambda c: c["datasets"]["digits"].update(scored_members=300),
    "training.*.num_workers": lambda c: c["training"]["digits"]["resnet18"].update(
        num_workers=3),
    "training.*.gpus": lambda c: c["training"]["digits"]["resnet18"].update(gpus=2),
    "runtime.jpeg_decode": lambda c: c["runtime"].update(jpeg_decode="cpu"),
    "config keys in another order": lambda c: _reverse_key_order(c),
}


def _reverse_key_order(mapping: dict) -> None:
    """Every mapping of ``mapping`` (itself included) with its keys in reverse order."""
    items = list(mapping.items())
    mapping.clear()
    for k, v in reversed(items):
        if isinstance(v, dict):
            _reverse_key_order(v)
        mapping[k] = v


def test_a_change_of_how_or_where_jobs_run_reruns_nothing_computed(finished_run):
    work, _ = finished_run
    for name, change in HOW_CHANGES.items():
        cfg = copy.deepcopy(tiny_config())
        change(cfg)
        jobs = dry_run_with(work, cfg)
        rerun = {r: n for r, n in jobs.items() if r in COMPUTING_RULES}
        assert not rerun, (name, jobs)


def test_a_change_of_what_is_computed_still_reruns_what_it_affects(finished_run):
    work, _ = finished_run
    cfg = copy.deepcopy(tiny_config())
    cfg["datasets"]["digits"]["split_seed"] = 1
    jobs = dry_run_with(work, cfg)
    # a new split: every network (2 targets, 2 references) and everything downstream
    assert jobs["membership_split"] == 1 and jobs["train_dense"] == 4
    assert jobs["reference_split"] == 1 and jobs["attack_sample"] == 2


def test_changing_one_sparsity_reruns_only_that_ticket_branch(finished_run):
    work, _ = finished_run
    cfg = copy.deepcopy(tiny_config())
    cfg["sparsities"] = [0.0, 0.6, 0.8]
    jobs = dry_run_with(work, cfg)
    assert "train_dense" not in jobs and "membership_split" not in jobs
    # 0.6 for both archs: oneshot and random_reinit train; IMP's round 1 (0.6) already
    # serves it, so imp only scores and attacks that round again under sparsity-0.6
    assert jobs["train_ticket"] == 4 and jobs["prune_mask"] == 4
    assert jobs["extract_confidences"] == 6 and jobs["fit_attack"] == 6  # one per model
    assert "transfer_attack" not in jobs  # 0.5/0.6 are not in the transfer set
    assert jobs["report"] == 1 and jobs["summarize_attacks"] == 1


def test_adding_a_replicate_reruns_only_its_branch_and_the_aggregates(finished_run):
    work, _ = finished_run
    cfg = copy.deepcopy(tiny_config())
    cfg["replicates"] = [0, 1]
    jobs = dry_run_with(work, cfg)
    assert jobs["train_dense"] == 2 and jobs["train_ticket"] == 12  # seed 1, both archs
    assert jobs["prune_mask"] == 12 and jobs["extract_confidences"] == 14
    assert jobs["fit_attack"] == 14  # the new seed's 14 models (both sample sizes each)
    # the membership split and the attack samples stay fixed; transfer uses the first seed
    for rule in ("membership_split", "attack_sample", "transfer_attack",
                 "summarize_transfer", "figure_transfer"):
        assert rule not in jobs, rule
    for rule in ("summarize_training", "summarize_attacks", "tables", "report"):
        assert jobs[rule] == 1, rule


def test_changing_an_attack_setting_reruns_attacks_and_aggregates_only(finished_run):
    work, _ = finished_run
    cfg = copy.deepcopy(tiny_config())
    cfg["attack"]["mlp"]["hidden_layer_sizes"] = [16]
    jobs = dry_run_with(work, cfg)
    assert jobs["fit_attack"] == 14 and jobs["transfer_attack"] == 4
    for rule in ("membership_split", "train_dense", "prune_mask", "train_ticket",
                 "extract_confidences", "attack_sample", "summarize_training",
                 "figure_test_accuracy"):
        assert rule not in jobs, rule


def test_changing_one_architectures_recipe_reruns_that_architecture_only(finished_run):
    work, _ = finished_run
    cfg = copy.deepcopy(tiny_config())
    cfg["training"]["digits"]["resnet50"]["lr"] = 0.02
    jobs = dry_run_with(work, cfg)
    assert jobs["train_dense"] == 1 and jobs["train_ticket"] == 6
    assert jobs["extract_confidences"] == 7 and jobs["fit_attack"] == 7
    assert "membership_split" not in jobs and "attack_sample" not in jobs
    proc = run_snakemake(work, "-n", "--cores", "2", "--forcerun", "train_dense")
    assert "resnet50" in proc.stdout  # sanity: the dry run names jobs


def test_adding_a_method_reruns_only_its_branch_and_the_aggregates(finished_run):
    work, _ = finished_run
    cfg = copy.deepcopy(tiny_config())
    cfg["pruning"]["methods"] = ["oneshot", "imp", "random_reinit", "random_mask"]
    jobs = dry_run_with(work, cfg)
    # random_mask at 0.5 and 0.8 for both archs, from the existing oneshot masks
    assert jobs["prune_mask"] == 4 and jobs["train_ticket"] == 4
    assert jobs["extract_confidences"] == 4 and jobs["fit_attack"] == 4
    for rule in ("membership_split", "train_dense", "attack_sample", "transfer_attack",
                 "reference_split"):
        assert rule not in jobs, rule
    for rule in ("summarize_training", "summarize_attacks", "tables", "report"):
        assert jobs[rule] == 1, rule


def test_changing_the_imp_fraction_reruns_only_imp(finished_run):
    work, _ = finished_run
    cfg = copy.deepcopy(tiny_config())
    cfg["pruning"]["imp"] = {"fraction": 0.5}  # rounds 0.5, 0.75, 0.875: 0.8 needs round 3
    jobs = dry_run_with(work, cfg)
    assert jobs["prune_mask"] == 6 and jobs["train_ticket"] == 6  # 3 rounds x 2 archs
    assert jobs["extract_confidences"] == 4 and jobs["fit_attack"] == 4
    assert "train_dense" not in jobs and "transfer_attack" not in jobs


@pytest.mark.parametrize("change, key", [
    (lambda c: c["pruning"].update(methods=["oneshot", "snipp"]), "pruning.methods"),
    (lambda c: c["pruning"].update(methods=["random_mask"]), "pruning.methods"),
    (lambda c: c["pruning"].update(methods=["oneshot", "oneshot"]), "pruning.methods"),
    (lambda c: c["pruning"].update(imp={"fraction": 1.5}), "pruning.imp.fraction"),
    (lambda c: c["pruning"].update(imp={"fractoin": 0.2}), "pruning.imp"),
    (lambda c: c["pruning"].update(imq={"fraction": 0.2}), "pruning.imq"),
    (lambda c: c["pruning"].update(rewind_step=5), "pruning.rewind_step"),
    (lambda c: c["pruning"].update(rewind_epoch=None), "pruning.rewind_epoch"),
    (lambda c: c["report"].update(table1_method="snip"), "report.table1_method"),
    (lambda c: c.update(architectures=["resnet18", "resnet34"]), "architectures"),
    (lambda c: c.update(sparsities=[0.0, 1.0]), "sparsities"),
    (lambda c: c["attack"].update(sample_sizes=[101]), "sample_sizes"),
    (lambda c: c["attack"].update(sample_sizes=[-4]), "sample_sizes"),
    (lambda c: c["attack"].update(sample_sizes=[2000]), "attack.sample_sizes"),
    (lambda c: c["datasets"]["digits"].update(source="mnist"), "source"),
    (lambda c: c["training"]["digits"].pop("resnet50"), "training.digits.resnet50"),
    (lambda c: c["report"].update(table1_sparsity=0.3), "report.table1_sparsity"),
    (lambda c: c.update(replicates=[0, 0]), "replicates"),
    (lambda c: c["attack"].update(models=["mlp", "knn"]), "attack.models"),
    (lambda c: c["attack"]["svm"].update(gama=2), "attack.svm"),
    (lambda c: c["attack"]["mlp"].update(hiden_layer_sizes=[3]), "attack.mlp"),
    (lambda c: c["transfer"].update(attack="loss"), "transfer.attack"),
    (lambda c: c["attack"].update(mpl={"alpha": 1.0}), "attack.mpl"),
])
def test_invalid_config_fails_at_dag_build_naming_the_key(tmp_path, change, key):
    cfg = copy.deepcopy(tiny_config())
    change(cfg)
    write_config(tmp_path, cfg)
    proc = run_snakemake(tmp_path, "-n", "--cores", "1", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert key in out, out[-2000:]
    assert not (tmp_path / "results").exists()


def test_missing_dataset_root_names_the_path(tmp_path):
    cfg = copy.deepcopy(tiny_config())
    missing = tmp_path / "no-cifar-here"
    cfg["datasets"] = {"cifar10": {"source": "cifar10", "root": str(missing), "members": 100,
                                   "nonmembers": 100}}
    cfg["training"] = {"cifar10": cfg["training"]["digits"]}
    cfg["transfer"]["dataset"] = "cifar10"
    write_config(tmp_path, cfg)
    dry = run_snakemake(tmp_path, "-n", "--cores", "1")  # the DAG needs no data
    # two target architectures, and the tiny config's two references for resnet18
    assert planned_jobs(dry.stdout + dry.stderr)["train_dense"] == 2 + 2
    proc = run_snakemake(tmp_path, "--cores", "1", "results/cifar10/membership.parquet",
                         check=False)
    assert proc.returncode != 0
    log = (tmp_path / "logs" / "cifar10" / "membership_split.log").read_text()
    assert str(missing / "cifar-10-batches-py") in log and "download: true" in log


def test_paper_grid_builds_without_data_and_gpu_rules_ask_for_a_gpu(tmp_path):
    import shutil
    import time

    import yaml

    from conftest import ROOT

    shutil.copy(ROOT / "config" / "paper.yaml", tmp_path / "config.yaml")
    t0 = time.time()
    proc = run_snakemake(tmp_path, "-n", "--cores", "all", "--resources", "gpu=4")
    elapsed = time.time() - t0
    jobs = planned_jobs(proc.stdout + proc.stderr)
    paper = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    reps = len(paper["replicates"])
    ref = paper["references"]
    n_ref = (ref["count"] * len(ref["datasets"]) * len(ref["architectures"]))
    ref_tickets = n_ref * sum(1 for s in ref["sparsities"] if s > 0) * len(ref["methods"])
    from lottery_mia.pruning import get_method

    methods = paper["pruning"]["methods"]
    tickets = [s for s in paper["sparsities"] if s > 0]
    assert "imp" in methods and len(methods) >= 4
    # IMP trains its rounds up to the one serving the highest sparsity; every other method
    # trains each sparsity once
    rounds = get_method("imp", paper["pruning"]["imp"]).rounds_for(max(tickets))
    per_model_set = (len(methods) - 1) * len(tickets) + rounds  # per dataset x arch x seed
    models = 1 + len(methods) * len(tickets)  # scored models per dataset x arch x seed
    # dataset x architecture grids: 3 datasets x 2 architectures, and the defended CIFAR-10
    # entries with ResNet18 only (datasets.<name>.architectures)
    archs = {name: len(d.get("architectures") or paper["architectures"])
             for name, d in paper["datasets"].items()}
    grids = sum(archs.values())
    assert grids == 3 * 2 + 6
    assert jobs["train_dense"] == grids * reps + n_ref
    assert jobs["train_ticket"] == grids * per_model_set * reps + ref_tickets
    assert jobs["prune_mask"] == jobs["train_ticket"]
    assert jobs["extract_confidences"] == grids * models * reps + n_ref + ref_tickets
    assert jobs["transfer_attack"] == 8 and jobs["reference_split"] == len(ref["datasets"])
    # one attack job per model, over all of its dataset's sample sizes; the CIFAR entries
    # share a list of sizes (rule fit_attack), ImageNet has its own (fit_attack_1)
    assert jobs["fit_attack"] == (grids - archs["imagenet"]) * models * reps
    assert jobs["fit_attack_1"] == archs["imagenet"] * models * reps
    out = proc.stdout + proc.stderr
    blocks = re.split(r"(?m)^(?=rule \w+:)", out)
    train_blocks = [b for b in blocks if "rule train_dense:" in b or "rule train_ticket:" in b]
    # a training job asks for its recipe's GPUs: ImageNet ResNet18 on 2, ResNet50 on 4
    def gpus_of(block):
        arch = re.search(r"arch=(\w+)", block).group(1)
        ds = re.search(r"dataset=(\w+)", block).group(1)
        return paper["training"][ds][arch].get("gpus", 1)

    assert train_blocks and all(f"gpu={gpus_of(b)}," in b for b in train_blocks)
    assert {gpus_of(b) for b in train_blocks} == {1, 2, 4}
    attack_blocks = [b for b in blocks if "rule fit_attack:" in b]
    assert attack_blocks and not any("gpu=1" in b for b in attack_blocks)
    assert elapsed < 30  # the 5 s target is measured in benchmarks/, not here


def test_every_rule_passes_snakemake_lint(tmp_path):
    write_config(tmp_path, tiny_config())
    proc = run_snakemake(tmp_path, "--lint", check=False)
    out = proc.stdout + proc.stderr
    assert "Lints for" not in out, out[-3000:]  # rule lints and snakefile lints alike
    assert proc.returncode == 0, out[-3000:]


def test_jobs_import_their_own_checkout_without_pythonpath(tmp_path):
    """No environment export: each script puts its checkout's src/ first on the path."""
    import os
    import subprocess
    import sys

    from conftest import ROOT, snakemake_cmd

    write_config(tmp_path, tiny_config())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    probe = tmp_path / "probe.py"
    probe.write_text("import sys; sys.argv = ['x']\n"
                     f"exec(open({str(ROOT / 'workflow/scripts/_checkout.py')!r}).read(), "
                     f"{{'__file__': {str(ROOT / 'workflow/scripts/_checkout.py')!r}}})\n"
                     "import lottery_mia; print(lottery_mia.__file__)\n")
    out = subprocess.run([sys.executable, str(probe)], capture_output=True, text=True,
                         env=env, check=True).stdout
    assert out.strip().startswith(str(ROOT / "src")), out
    proc = subprocess.run(snakemake_cmd() + ["-s", str(ROOT / "Snakefile"), "-d", str(tmp_path),
                          "--configfile", str(tmp_path / "config.yaml"), "--cores", "1",
                          "results/digits/membership.parquet"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (tmp_path / "logs/digits/membership_split.log").read_text()
    assert "Traceback" not in log
    assert (tmp_path / "results/digits/membership.parquet").exists(), proc.stderr[-2000:]


def test_changing_the_sample_sizes_retrains_nothing(finished_run):
    """Training waits for the data checks (an ancient input): new checks order the jobs but
    never retrain a network."""
    work, _ = finished_run
    cfg = copy.deepcopy(tiny_config())
    cfg["attack"]["sample_sizes"] = [100, 150, 200]
    jobs = dry_run_with(work, cfg)
    assert jobs["attack_sample"] == 1 and jobs["check_data"] == 1
    for rule in ("train_dense", "prune_mask", "train_ticket", "extract_confidences"):
        assert rule not in jobs, (rule, jobs)


def test_a_sample_size_beyond_the_same_class_pairs_fails_at_dag_time(tmp_path):
    """digits: the split's labels are known while the DAG is built, so the stratified limit
    (same-class member/non-member pairs, not 2 x min(members, non-members)) is checked
    there; nothing runs."""
    cfg = copy.deepcopy(tiny_config())  # 300 members, 300 non-members: 299 same-class pairs
    cfg["attack"]["sample_sizes"] = [100, 200, 600]
    write_config(tmp_path, cfg)
    proc = run_snakemake(tmp_path, "--cores", "1", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "attack.sample_sizes" in out and "at most 598" in out and "same class" in out
    assert not (tmp_path / "results").exists()


def test_the_data_checks_fail_before_any_network_trains(tmp_path):
    """CIFAR: the split needs the files, so the limit is checked by the data jobs, which run
    first; the first network never starts."""
    from conftest import write_tiny_cifar

    root = write_tiny_cifar(tmp_path / "cifar", n_train=100, n_test=100)
    cfg = copy.deepcopy(tiny_config())
    cfg["datasets"] = {"cifar10": {"source": "cifar10", "root": str(root), "members": 100,
                                   "nonmembers": 100}}
    cfg["training"] = {"cifar10": cfg["training"]["digits"]}
    cfg["attack"]["sample_sizes"] = [20, 200]  # 200 needs 100 same-class pairs: too many
    cfg["transfer"].update(dataset="cifar10", sample_size=20)
    cfg["report"].update(figure2_sample_size=20)
    write_config(tmp_path, cfg)
    proc = run_snakemake(tmp_path, "--cores", "2", check=False)
    assert proc.returncode != 0
    log = (tmp_path / "logs" / "cifar10" / "attack_sample_n200.log").read_text()
    assert "lower attack.sample_sizes to at most" in log
    assert not list((tmp_path / "results").rglob("model.pt"))
    assert not list((tmp_path / "logs").rglob("train_dense.log"))
