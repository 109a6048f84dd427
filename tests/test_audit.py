"""Auditing any model's outputs (lottery_mia.audit, lottery-mia audit).

- the audit of tables exported from the pipeline gets the pipeline's own numbers (the same
  attack sample, metrics, intervals and scores as the fit-attack job, references included);
- logits of plain torchvision models trained outside the pipeline (``torchvision.ops.MLP``;
  the resnet18 headline is benchmarks/audit_headline.py): the command line runs, writes its
  files, and the loss attack finds the members of an overfit model;
- bad inputs: each error names the file and the column (or option) and what to do;
- no membership signal: every attack's AUC interval covers chance.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lottery_mia.attack_samples import make_attack_sample
from lottery_mia.attacks import ATTACKS
from lottery_mia.audit import KIND_ORDER, AuditInputError, audit
from lottery_mia.cli import main
from lottery_mia.confidences import ConfidenceTable, read_confidences, write_confidences
from lottery_mia.datasets.digits import digits_arrays
from lottery_mia.membership import make_membership_split
from lottery_mia.references import make_inclusion

ROOT = Path(__file__).resolve().parents[1]
# small attack models, as in the other attack tests (the audit takes the pipeline's
# attack.<name> settings)
FAST = {"mlp": {"hidden_layer_sizes": [32], "max_iter": 300},
        "random_forest": {"n_estimators": 30}, "gradient_boosting": {"max_iter": 20},
        "shadow_mlp": {"hidden_layer_sizes": [16], "max_iter": 200}}
# every attack, in the order a pipeline config lists them: attack.models, attack.baselines,
# references.attacks
ALL = [n for kind in KIND_ORDER for n, a in ATTACKS.items() if a.kind == kind
       and not a.needs_parent and not a.needs_inputs
       and not a.needs_sensitivity]  # the audit attacks one table
TARGET_ONLY = [n for n in ALL if not ATTACKS[n].needs_references]
OUTPUTS = ("attacks.csv", "scores.parquet", "metrics.json", "roc.png", "report.html",
           "audit.json")


def synthetic_logits(labels, inside, rng, signal=2.0, classes=10):
    """Logits of a model that is more confident on the samples it trained on."""
    logits = rng.normal(0.0, 1.0, (len(labels), classes))
    logits[np.arange(len(labels)), labels] += 1.0 + signal * np.asarray(inside, float)
    return logits


def target_frame(table: ConfidenceTable) -> pd.DataFrame:
    """A confidence table in the audit's target format (through the table's API)."""
    return pd.DataFrame({"sample_id": table.sample_id, "label": table.label,
                         "logits": list(table.logits), "member": table.member})


# --------------------------------------------------------------------------- the pipeline's
@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory):
    """What the pipeline writes for one model of a digits split with 4 reference models:
    its confidence table, the references' and their inclusion, an attack sample, and the
    fit-attack job's outputs on them (no network is trained: the logits are synthetic)."""
    from lottery_mia.jobs.attack import run_attacks

    d = tmp_path_factory.mktemp("pipeline")
    labels = digits_arrays()[1]
    membership = make_membership_split({"all": labels}, "digits", members=300,
                                       nonmembers=300, scored_members=None, seed=0)
    rng = np.random.default_rng(7)
    ids, lab = membership["sample_id"].to_numpy(), membership["label"].to_numpy()
    member = membership["member"].to_numpy()
    meta = {"dataset": "digits", "arch": "resnet18", "method": "dense", "sparsity": 0.0}
    write_confidences(ConfidenceTable.from_logits(ids, lab, member,
                                                  synthetic_logits(lab, member, rng), meta),
                      d / "confidences.parquet")
    inclusion = make_inclusion(membership, 4, seed=1000)
    inclusion.to_parquet(d / "inclusion.parquet", index=False)
    refs = []
    for k in range(4):
        inc = inclusion[inclusion["reference"] == k].set_index("sample_id").loc[ids,
                                                                                 "included"]
        write_confidences(ConfidenceTable.from_logits(
            ids, lab, inc.to_numpy(), synthetic_logits(lab, inc.to_numpy(), rng),
            {**meta, "replicate": 1000 + k}), d / f"ref-{k}.parquet")
        refs.append(d / f"ref-{k}.parquet")
    make_attack_sample(membership, 200, seed=3).to_parquet(d / "sample.parquet", index=False)
    started = time.time()
    result = run_attacks(confidences_path=d / "confidences.parquet",
                         sample_path=d / "sample.parquet", attacks=ALL,
                         settings=FAST, features="softmax", seed=3, n_bootstrap=200,
                         out_metrics=d / "metrics.json", out_scores=d / "scores.parquet",
                         reference_paths=refs, inclusion_path=d / "inclusion.parquet")
    print(f"pipeline fit-attack job: {time.time() - started:.1f}s")
    return {"dir": d, "result": result, "refs": refs}


def export(run) -> tuple[Path, Path]:
    """The pipeline's tables in the audit's format: target.parquet and references.parquet
    (read through the ConfidenceTable API, not the files' columns)."""
    d = run["dir"]
    target_frame(read_confidences(d / "confidences.parquet")).to_parquet(
        d / "target.parquet", index=False)
    frames = []
    for k, path in enumerate(run["refs"]):
        t = read_confidences(path)
        frames.append(pd.DataFrame({"reference": k, "sample_id": t.sample_id,
                                    "logits": list(t.logits), "included": t.member}))
    pd.concat(frames, ignore_index=True).to_parquet(d / "references.parquet", index=False)
    return d / "target.parquet", d / "references.parquet"


def assert_same_attacks(mine: list[dict], theirs: list[dict]) -> None:
    """The same results, value for value; what each attack cost (``attack_seconds``: a
    timing, never equal twice) aside."""
    a, b = pd.DataFrame(mine), pd.DataFrame(theirs)
    assert list(a["attack"]) == list(b["attack"])
    assert (a["attack_seconds"] >= 0).all() and (b["attack_seconds"] >= 0).all()
    pd.testing.assert_frame_equal(a.drop(columns="attack_seconds"),
                                  b.drop(columns="attack_seconds"), check_exact=True)


def test_audit_of_exported_pipeline_tables_gets_the_pipelines_numbers(pipeline_run,
                                                                      tmp_path):
    target, refs = export(pipeline_run)
    res = audit(target, refs, out_dir=tmp_path / "audit", sample_size=200, seed=3,
                attack_settings=FAST, n_bootstrap=200)
    theirs = json.loads((pipeline_run["dir"] / "metrics.json").read_text())
    # every attack the inputs allow, in the pipeline's order, on the same attack sample
    assert list(res.attacks["attack"]) == ALL == [r["attack"] for r in theirs["attacks"]]
    assert not res.skipped
    mine = json.loads((tmp_path / "audit" / "metrics.json").read_text())
    assert mine["sample_size"] == theirs["sample_size"] == 200
    assert_same_attacks(mine["attacks"], theirs["attacks"])
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "audit" / "scores.parquet"),
                                  pd.read_parquet(pipeline_run["dir"] / "scores.parquet"),
                                  check_exact=True)
    # attacks.csv holds the same numbers, one row per attack
    csv = pd.read_csv(tmp_path / "audit" / "attacks.csv")
    for r in theirs["attacks"]:
        row = csv[csv["attack"] == r["attack"]].iloc[0]
        for k in ("auc", "auc_ci_low", "auc_ci_high", "accuracy", "tpr_at_fpr_0.1",
                  "n_eval_members", "n_eval_nonmembers", "min_fpr"):
            assert row[k] == pytest.approx(r[k], rel=1e-12, nan_ok=True), (r["attack"], k)
        assert (row["n_references"] == 4) == (r["kind"] == "reference")
    for name in OUTPUTS:
        assert (tmp_path / "audit" / name).stat().st_size > 0


def test_audit_with_the_pipelines_attack_sample_file(pipeline_run, tmp_path):
    """--attack-sample: the pipeline's own sample file gives the same numbers."""
    target, refs = export(pipeline_run)
    some = ["mlp", "loss", "lira_online"]
    assert main(["audit", "--target", str(target), "--references", str(refs),
                 "--out", str(tmp_path / "a"), "--attack-sample",
                 str(pipeline_run["dir"] / "sample.parquet"), "--seed", "3",
                 "--attacks", "mlp,loss", "lira_online", "--n-bootstrap", "200",
                 "--attack-settings", str(settings_file(tmp_path))]) == 0
    mine = json.loads((tmp_path / "a" / "metrics.json").read_text())["attacks"]
    theirs = [r for r in json.loads((pipeline_run["dir"] / "metrics.json").read_text())[
        "attacks"] if r["attack"] in some]
    assert_same_attacks(mine, theirs)


def settings_file(tmp_path) -> Path:
    path = tmp_path / "settings.yaml"
    path.write_text(json.dumps(FAST))
    return path


# --------------------------------------------------------------------------- torchvision
def digits_split(members, nonmembers, seed: int = 0):
    """sklearn's digits with a stratified member/non-member split, in sample-id order:
    (images, labels, sample ids, member flags)."""
    images, labels = digits_arrays()
    split = make_membership_split({"all": labels}, "digits", members=members,
                                  nonmembers=nonmembers, scored_members=None,
                                  seed=seed).sort_values("sample_id")
    ids = split["sample_id"].to_numpy()
    return images[ids], labels[ids], ids, split["member"].to_numpy()


def train_torchvision(model, x, y, train, *, epochs: int, seed: int, batch: int):
    """Train a torchvision ``model`` with Adam (lr 1e-3) on the rows ``train`` of ``x``,
    one thread; its eval-mode logits on every row (nothing of lottery_mia is involved)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the test machines are small and shared
    try:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        rows = torch.as_tensor(np.flatnonzero(train))
        yt = torch.as_tensor(y)
        g = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            model.train()
            order = rows[torch.randperm(len(rows), generator=g)]
            for i in range(0, len(order), batch):
                b = order[i:i + batch]
                loss = torch.nn.functional.cross_entropy(model(x[b]), yt[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
        model.eval()
        with torch.no_grad():
            return torch.cat([model(x[i:i + 256]) for i in range(0, len(x), 256)]).numpy()
    finally:
        torch.set_num_threads(threads)


def torchvision_mlp_logits(x, y, train, seed: int) -> np.ndarray:
    """``torchvision.ops.MLP`` (64 -> 256 -> 256 -> 10) on the 64 pixels, 300 epochs."""
    import torch
    import torchvision

    torch.manual_seed(seed)
    model = torchvision.ops.MLP(64, [256, 256, 10])
    pixels = torch.tensor(x.reshape(len(x), 64) / 16.0, dtype=torch.float32)
    return train_torchvision(model, pixels, y, train, epochs=300, seed=seed, batch=32)


def resnet18_logits(x, y, train, seed: int, epochs: int) -> np.ndarray:
    """``torchvision.models.resnet18`` on the images upsampled to 3 x 32 x 32."""
    import torch
    import torchvision

    images = torch.tensor(x, dtype=torch.float32)[:, None] / 16.0
    images = torch.nn.functional.interpolate(images, size=32, mode="bilinear",
                                             align_corners=False)
    images = ((images - 0.5) / 0.5).repeat(1, 3, 1, 1)
    torch.manual_seed(seed)
    model = torchvision.models.resnet18(num_classes=10)
    return train_torchvision(model, images, y, train, epochs=epochs, seed=seed, batch=64)


def model_and_references(train_fn, members: int, k: int = 4):
    """A target trained on ``members`` digits (every other image held out) and ``k``
    reference models on halves of the pool of its members and as many non-members (the
    pipeline's inclusion design, :func:`make_inclusion`), by ``train_fn(x, y, rows,
    seed)``: the audit's target and references tables."""
    x, y, ids, member = digits_split(members, None)
    target = pd.DataFrame({"sample_id": ids, "label": y, "member": member,
                           "logits": list(train_fn(x, y, member, 0).astype(np.float32))})
    split = pd.DataFrame({"sample_id": ids, "label": y, "member": member, "scored": True})
    inclusion = make_inclusion(split, k, seed=1000)
    frames = []
    for r in range(k):
        inc = inclusion[inclusion["reference"] == r].set_index("sample_id").loc[
            ids, "included"].to_numpy()
        frames.append(pd.DataFrame({
            "reference": f"ref-{r}", "sample_id": ids, "included": inc,
            "logits": list(train_fn(x, y, inc, 1000 + r).astype(np.float32))}))
    return target, pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def torchvision_tables(tmp_path_factory):
    """target.parquet and references.parquet of torchvision MLPs trained outside the
    pipeline: the target on 100 digits (overfit: every one right, about 86% of the 1697
    held-out images), 4 references on halves of a pool of 200."""
    started = time.time()
    target, refs = model_and_references(torchvision_mlp_logits, members=100)
    d = tmp_path_factory.mktemp("torchvision")
    target.to_parquet(d / "mlp_digits.parquet", index=False)
    refs.to_parquet(d / "references.parquet", index=False)
    print(f"5 torchvision MLPs trained in {time.time() - started:.1f}s")
    return d / "mlp_digits.parquet", d / "references.parquet"


def test_command_line_audits_torchvision_models(torchvision_tables, tmp_path):
    target, refs = torchvision_tables
    out = tmp_path / "audit"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, "-m", "lottery_mia.cli", "audit", "--target", str(target),
         "--references", str(refs), "--out", str(out), "--n-bootstrap", "300",
         "--test-fraction", "0.8", "--attack-settings", str(settings_file(tmp_path))],
        capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"report: {out / 'report.html'}" in proc.stdout
    for name in OUTPUTS:
        assert (out / name).stat().st_size > 0, name
    attacks = pd.read_csv(out / "attacks.csv").set_index("attack")
    assert list(attacks.index) == ALL  # every attack: K = 4 references allow them all
    assert json.loads((out / "audit.json").read_text())["skipped"] == {}
    # the overfit target's members are found, by the loss attack on its attack-test rows
    # and by LiRA on the rows its references can judge
    assert attacks.loc["loss", "auc"] > 0.5 and attacks.loc["loss", "auc_ci_low"] > 0.5
    assert attacks.loc["lira_online", "auc"] > 0.5
    assert (attacks["n_references"].notna() == (attacks["kind"] == "reference")).all()
    # the low-FPR rule: 80 attack-test non-members measure no TPR at 10% FPR (8 above the
    # threshold)
    ref = attacks["kind"] == "reference"
    assert attacks.loc[~ref, "tpr_at_fpr_0.1"].isna().all()
    assert attacks.loc[~ref, "n_eval_nonmembers"].eq(80).all()
    # the reference attacks judge only the pool of 200 (the 100 members and 100 of the 1697
    # non-members), less the attack-train rows that place their threshold: the 1597 rows
    # no reference trained on are left out and counted
    assert attacks.loc[ref, "n_unjudged"].eq(1797 - 200).all()
    train_members = json.loads((out / "audit.json").read_text())["inputs"][
        "attack_sample"]["attack_train"] // 2
    assert attacks.loc[ref, "n_eval_members"].eq(100 - train_members).all()
    assert (attacks.loc[ref, "n_eval_members"] + attacks.loc[ref, "n_eval_nonmembers"]
            < 200).all()
    assert attacks.loc[ref, "tpr_at_fpr_0.01"].isna().all()
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and 'src="roc.png"' not in html
    assert "n/a (fewer than 10 non-members above the threshold)" in html
    assert "mlp_digits" in html and "ref-3" in html
    scores = pd.read_parquet(out / "scores.parquet")
    assert {f"score_{a}" for a in ALL} <= set(scores.columns)
    assert len(scores) == 1797  # the reference attacks score every row of the target


# --------------------------------------------------------------------------- bad inputs
def good_target(n=200, classes=10, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    member = np.arange(n) % 4 < 2
    return pd.DataFrame({"sample_id": np.arange(n) + 100, "label": labels,
                         "logits": list(synthetic_logits(labels, member, rng)),
                         "member": member})


def good_references(target: pd.DataFrame, k=4, seed=1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for r in range(k):
        inc = rng.random(len(target)) < 0.5
        frames.append(pd.DataFrame({
            "reference": f"ref{r}", "sample_id": target["sample_id"],
            "logits": list(synthetic_logits(target["label"].to_numpy(), inc, rng)),
            "included": inc}))
    return pd.concat(frames, ignore_index=True)


def set_logit(frame, row, value):
    logits = [np.array(v, dtype=float) for v in frame["logits"]]
    logits[row][3] = value
    return frame.assign(logits=logits)


def _drop_member_column(f):
    return f.drop(columns="member")


def _ragged(f):
    logits = list(f["logits"])
    logits[5] = np.asarray(logits[5])[:9]
    return f.assign(logits=logits)


TARGET_CASES = {
    "missing column": (_drop_member_column, ["'member'", "missing column"]),
    "label as text": (lambda f: f.assign(label=f["label"].astype(str)),
                      ["'label'", "not integers"]),
    "label as float": (lambda f: f.assign(label=f["label"].astype(float)),
                       ["'label'", "not integers"]),
    "member as text": (lambda f: f.assign(member=np.where(f["member"], "yes", "no")),
                       ["'member'", "not bool"]),
    "member not 0/1": (lambda f: f.assign(member=f["member"].astype(int) * 2),
                       ["'member'", "other than 0 and 1"]),
    "logits not lists": (lambda f: f.assign(logits=1.0), ["'logits'", "not a list"]),
    "NaN logit": (lambda f: set_logit(f, 7, np.nan), ["'logits'", "NaN", "107"]),
    "infinite logit": (lambda f: set_logit(f, 7, np.inf), ["'logits'", "infinite"]),
    "logit beyond float32": (lambda f: set_logit(f, 7, 1e300), ["'logits'", "float32"]),
    "varying logit lengths": (_ragged, ["'logits'", "different lengths", "105"]),
    "label out of range": (lambda f: f.assign(label=np.where(np.arange(len(f)) == 3, 10,
                                                             f["label"])),
                           ["'label'", "outside 0..9"]),
    "negative label": (lambda f: f.assign(label=f["label"] - 1), ["'label'", "outside"]),
    "no members": (lambda f: f.assign(member=False), ["'member'", "no members"]),
    "no non-members": (lambda f: f.assign(member=True), ["'member'", "no non-members"]),
    "repeated sample id": (lambda f: f.assign(sample_id=np.arange(len(f)) // 2),
                           ["'sample_id'", "repeats"]),
    "null label": (lambda f: f.assign(label=pd.array([None] + [1] * (len(f) - 1),
                                                     dtype="Int64")),
                   ["'label'", "null"]),
    "no same-class pairs": (lambda f: f.assign(member=f["label"] < 5),
                            ["member/non-member pair", "same class"]),
}


@pytest.mark.parametrize("case", sorted(TARGET_CASES))
def test_bad_target_names_the_file_and_column(tmp_path, case):
    change, expected = TARGET_CASES[case]
    path = tmp_path / "my_target.parquet"
    change(good_target()).to_parquet(path, index=False)
    with pytest.raises(AuditInputError) as err:
        audit(path, out_dir=tmp_path / "out")
    for text in [str(path)] + expected:
        assert text in str(err.value), (case, str(err.value))
    assert not (tmp_path / "out").exists()  # nothing written before the inputs are good


def _keep_references(f, names):
    return f[f["reference"].isin(names)]


REFERENCE_CASES = {
    "missing rows": (lambda f: f.drop(index=f.index[(f["reference"] == "ref2")
                                                    & (f["sample_id"] < 110)]),
                     ["reference 'ref2'", "no row for 10", "every target sample"]),
    "odd count": (lambda f: _keep_references(f, ["ref0", "ref1", "ref2"]),
                  ["3 reference models", "odd", "add or drop one"]),
    "one reference": (lambda f: _keep_references(f, ["ref0"]),
                      ["1 reference model", "at least 2"]),
    "other classes": (lambda f: f.assign(logits=[np.asarray(v)[:5] for v in f["logits"]]),
                      ["'logits'", "5 values per row", "target's has 10"]),
    "always included": (lambda f: f.assign(included=f["included"] | (f["reference"] ==
                                                                      "ref1")),
                        ["'included'", "reference 'ref1'", "IN", "OUT"]),
    "repeated rows": (lambda f: pd.concat([f, f.iloc[:3]]), ["repeated row", "ref0"]),
    "other labels": (lambda f: f.assign(label=(f["sample_id"] + 1) % 10),
                     ["'label'", "differs from the target's"]),
    "missing included": (lambda f: f.drop(columns="included"), ["'included'", "missing"]),
    "NaN logit": (lambda f: set_logit(f, 2, np.nan), ["'logits'", "NaN"]),
}


@pytest.mark.parametrize("case", sorted(REFERENCE_CASES))
def test_bad_references_name_the_file_and_column(tmp_path, case):
    change, expected = REFERENCE_CASES[case]
    target = good_target()
    target.to_parquet(tmp_path / "t.parquet", index=False)
    path = tmp_path / "my_refs.parquet"
    change(good_references(target)).to_parquet(path, index=False)
    with pytest.raises(AuditInputError) as err:
        audit(tmp_path / "t.parquet", path, out_dir=tmp_path / "out")
    for text in [str(path)] + expected:
        assert text in str(err.value), (case, str(err.value))


def test_bad_options_say_what_to_do(tmp_path):
    target = good_target()
    target.to_parquet(tmp_path / "t.parquet", index=False)
    t = tmp_path / "t.parquet"
    refs2 = good_references(target, k=2)

    def error(**kw) -> str:
        with pytest.raises(AuditInputError) as err:
            audit(kw.pop("target", t), kw.pop("references", None),
                  out_dir=tmp_path / "out", **kw)
        return str(err.value)

    assert "at most 200" in error(sample_size=400)  # 100 same-class pairs
    assert "even integer" in error(sample_size=51)
    assert "did you mean 'lira_online'" in error(attacks=["lira_onlin"])
    assert "needs reference models" in error(attacks=["loss", "rmia"])
    assert "a: auto" in error(references=refs2, attacks=["rmia"])
    assert "did you mean 'hidden_layer_sizes'" in error(attack_settings={
        "mlp": {"hidden_layer_size": [8]}})
    assert "not an attack" in error(attack_settings={"mpl": {}})
    assert "n_bootstrap" in error(n_bootstrap=50)
    assert "features 'probs'" in error(features="probs")
    assert "no such file" in error(target=tmp_path / "nope.parquet")
    assert "either a sample size" in error(sample_size=40, attack_sample=t)
    assert "mapping" in error(attack_settings=["mlp"])
    (tmp_path / "a_file").write_text("")
    with pytest.raises(AuditInputError, match="not a folder"):
        audit(t, out_dir=tmp_path / "a_file")
    (tmp_path / "garbage.parquet").write_text("not parquet\n" * 20)
    assert "not a readable Parquet file" in error(target=tmp_path / "garbage.parquet")
    sample = make_attack_sample(pd.DataFrame({
        "sample_id": target["sample_id"], "pool": "all", "pool_index": np.arange(200),
        "label": target["label"], "member": target["member"], "scored": True}), 40, seed=0)
    bad = sample.assign(sample_id=sample["sample_id"] + 1000)
    bad.to_parquet(tmp_path / "sample.parquet", index=False)
    msg = error(attack_sample=tmp_path / "sample.parquet")
    assert str(tmp_path / "sample.parquet") in msg and "not in the target" in msg
    unbalanced = sample[~((sample["fold"] == "attack_test") & sample["member"]
                          & (sample["label"] == sample["label"].iloc[0]))]
    unbalanced.to_parquet(tmp_path / "sample.parquet", index=False)
    assert "class-stratified" in error(attack_sample=tmp_path / "sample.parquet")
    # without references the reference attacks are left out, saying why
    res = audit(t, out_dir=tmp_path / "alone", n_bootstrap=200, attack_settings=FAST)
    assert list(res.attacks["attack"]) == TARGET_ONLY
    assert set(res.skipped) == set(ALL) - set(TARGET_ONLY)
    assert all("needs reference models" in why for why in res.skipped.values())
    assert "needs reference models" in (tmp_path / "alone" / "report.html").read_text()
    # rmia is left out, with the reason, when the references are too few to tune a
    res = audit(t, refs2, out_dir=tmp_path / "two", attacks=None, n_bootstrap=200,
                attack_settings=FAST)
    assert "rmia" in res.skipped and "a: auto" in res.skipped["rmia"]
    assert {"lira_online", "lira_offline", "shadow_mlp"} <= set(res.attacks["attack"])


def test_references_one_file_per_reference(tmp_path):
    """A file without a 'reference' column holds one reference, named by the file."""
    target = good_target()
    refs = good_references(target, k=2)
    paths = []
    for name, part in refs.groupby("reference"):
        paths.append(tmp_path / f"model_{name}.parquet")
        part.drop(columns="reference").to_parquet(paths[-1], index=False)
    res = audit(target, paths, out_dir=tmp_path / "out", attacks=["lira_offline"],
                n_bootstrap=200)
    assert res.inputs["references"]["names"] == ["model_ref0", "model_ref1"]
    assert res.row("lira_offline")["n_references"] == 2


# --------------------------------------------------------------------------- no signal
def test_no_membership_signal_scores_chance(tmp_path):
    """Membership flags drawn independently of the logits (target and references): every
    attack scores about 0.5 and its 95% interval covers 0.5, give or take 0.02 (the
    tolerance of the pipeline's own null test, tests/test_attacks.py). 95% intervals miss
    5% of the time, and attacks that read the same target logits on overlapping rows miss
    together (the four threshold attacks rank rows almost alike; the reference attacks,
    evaluated on the judged rows outside the attack-train fold, share most of the
    attack-test rows): at most 4 of the 13 may miss, none by much.
    ``tests/test_attack_calibration.py`` and ``tests/test_reference_geometry.py`` check the
    calibration itself over many draws."""
    rng = np.random.default_rng(11)
    n = 1000
    labels = np.arange(n) % 10
    target = pd.DataFrame({"sample_id": np.arange(n), "label": labels,
                           "logits": list(synthetic_logits(labels, np.zeros(n), rng)),
                           "member": rng.permutation(np.arange(n) % 2 == 0)})
    res = audit(target, good_references(target, k=4, seed=12), out_dir=tmp_path / "null",
                attack_settings=FAST, n_bootstrap=300, seed=5)
    assert list(res.attacks["attack"]) == ALL
    a = res.attacks.set_index("attack")
    print(a[["auc", "auc_ci_low", "auc_ci_high"]])
    assert ((a["auc"] - 0.5).abs() < 0.08).all()  # about 3 standard errors at 237 + 237
    misses = a[(a["auc_ci_low"] > 0.52) | (a["auc_ci_high"] < 0.48)]
    assert len(misses) <= 4, misses


def test_the_audit_table_shows_balanced_accuracy_not_the_majority_share():
    """A reference attack is evaluated on every row of the target (here 300 members and
    1,497 non-members): an attack that calls everything a non-member has accuracy 0.833,
    the non-member share, but balanced accuracy 0.5. The report's table shows the latter."""
    from lottery_mia.audit import attacks_view

    row = {"attack": "lira_online", "kind": "reference", "n_eval_members": 300,
           "n_eval_nonmembers": 1497, "min_fpr": 1 / 1497, "n_references": 4,
           "verdict_auc": "above chance"}
    for m, v in (("auc", 0.56), ("accuracy", 1497 / 1797), ("balanced_accuracy", 0.5),
                 ("tpr_at_fpr_0.1", 0.2), ("tpr_at_fpr_0.01", 0.1),
                 ("tpr_at_fpr_0.001", np.nan)):
        row.update({m: v, f"{m}_ci_low": v - 0.01, f"{m}_ci_high": v + 0.01})
    view = attacks_view(pd.DataFrame([row]))
    assert "accuracy [95% CI]" not in view
    assert view["balanced accuracy [95% CI]"].iloc[0].startswith("0.500")


def test_the_audit_never_writes_over_its_own_input(tmp_path):
    out = tmp_path / "same"
    out.mkdir()
    path = out / "scores.parquet"
    good_target().to_parquet(path, index=False)
    before = path.read_bytes()
    with pytest.raises(AuditInputError, match="is one of the audit's outputs.*another --out"):
        audit(path, out_dir=out, attacks=["loss"], n_bootstrap=300)
    assert path.read_bytes() == before


def test_a_failed_audit_leaves_the_previous_outputs_whole(tmp_path, monkeypatch):
    """A second audit into the same --out that fails part-way leaves the first run's
    outputs as they were: none of the second run's files beside them."""
    from lottery_mia.audit import run as audit_run

    out = tmp_path / "audit"
    audit(good_target(), out_dir=out, attacks=["loss"], n_bootstrap=300)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(before) == set(audit_run.OUTPUT_FILES.values())

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(audit_run, "write_report", broken)
    with pytest.raises(OSError, match="disk full"):
        audit(good_target(), out_dir=out, attacks=["loss", "confidence"], n_bootstrap=300,
              seed=3)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_references_that_share_one_half_are_left_out_with_the_reason(tmp_path):
    """Four references trained on the same half: no row is IN for one and OUT for another,
    so no reference attack can be placed or evaluated; they are left out, and the report
    says why (before: LiRA 'at chance', or a raw error)."""
    target = good_target(400)
    refs = good_references(target, k=4)
    refs["included"] = np.tile(refs[refs.reference == "ref0"]["included"].to_numpy(), 4)
    res = audit(target, refs, out_dir=tmp_path / "a", attack_settings=FAST, n_bootstrap=300)
    assert not (res.attacks["kind"] == "reference").any()
    assert {"lira_online", "lira_offline", "rmia", "shadow_mlp"} <= set(res.skipped)
    assert "IN for some reference and OUT for another" in res.skipped["lira_online"]
    html = (tmp_path / "a" / "report.html").read_text()
    assert "different random halves" in html
    with pytest.raises(AuditInputError, match="references: only 0 of the"):
        audit(target, refs, out_dir=tmp_path / "b", attacks=["lira_offline"],
              n_bootstrap=300)


def test_a_dollar_in_the_models_name_is_drawn_literally(tmp_path):
    res = audit(good_target(), out_dir=tmp_path / "a", attacks=["loss"], n_bootstrap=300,
                name="second $\\x$ model")
    assert (tmp_path / "a" / "roc.png").stat().st_size > 0
    assert "second $\\x$ model" in (tmp_path / "a" / "report.html").read_text()
    assert res.files["report"].exists()


def test_a_sample_id_beyond_int64_is_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = good_target()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    ids = pa.array(np.arange(len(frame), dtype=np.uint64) + np.uint64(2**63), pa.uint64())
    table = table.set_column(table.schema.get_field_index("sample_id"), "sample_id", ids)
    pq.write_table(table, tmp_path / "t.parquet")
    with pytest.raises(AuditInputError, match="sample_id.*beyond a signed 64-bit"):
        audit(tmp_path / "t.parquet", out_dir=tmp_path / "a", attacks=["loss"],
              n_bootstrap=300)


@pytest.mark.parametrize("case", ["dangling symlink", "under a file", "full disk"])
def test_an_unwritable_out_is_one_line_and_exit_2(tmp_path, case, monkeypatch, capsys):
    from lottery_mia import cli
    from lottery_mia.audit import run as audit_run

    good_target().to_parquet(tmp_path / "t.parquet", index=False)
    if case == "dangling symlink":
        out = tmp_path / "link"
        out.symlink_to(tmp_path / "missing")
    elif case == "under a file":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "audit"
    else:
        out = tmp_path / "full"

        def full(*a, **k):
            raise OSError(28, "No space left on device", str(out / "attacks.csv"))

        monkeypatch.setattr(audit_run, "write_csv", full)
    code = cli.main(["audit", "--target", str(tmp_path / "t.parquet"), "--out", str(out),
                     "--attacks", "loss", "--n-bootstrap", "300"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert str(out) in err or "symbolic link" in err


def test_probabilities_given_as_logits_are_warned_about(tmp_path, capsys):
    target = good_target()
    z = np.stack(target["logits"].to_numpy())
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    res = audit(target.assign(logits=list(p)), out_dir=tmp_path / "p", attacks=["loss"],
                n_bootstrap=300)
    assert any("softmax probabilities, not logits" in w for w in res.inputs["warnings"])
    assert "softmax probabilities, not logits" in (tmp_path / "p" / "report.html").read_text()
    assert "warning:" in capsys.readouterr().out
    plain = audit(target, out_dir=tmp_path / "z", attacks=["loss"], n_bootstrap=300)
    assert plain.inputs["warnings"] == []
