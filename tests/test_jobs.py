"""lottery_mia.jobs: every rule's entry point, chained in one process as the DAG chains them
(split, dense training, pruning, ticket training, scoring, attacks, transfer, summaries),
each reading only what the one before it wrote."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lottery_mia.jobs.attack import run_attacks_per_sample, transfer_attack
from lottery_mia.jobs.prune import prune_mask
from lottery_mia.jobs.score import extract_confidences
from lottery_mia.jobs.split import build_attack_sample, build_references, check_data
from lottery_mia.jobs.summarize import summarize_attacks, summarize_training
from lottery_mia.jobs.train import train_ticket

SIZES = [100, 200]
ATTACKS = ["loss", "confidence", "logistic_regression"]


@pytest.fixture(scope="module")
def chain(trained_digits, tmp_path_factory):
    d = tmp_path_factory.mktemp("jobs")
    dense = trained_digits["dir"]
    data = trained_digits["data"]
    samples = []
    for n in SIZES:
        samples.append(d / f"sample-n{n}.parquet")
        build_attack_sample(membership_path=data.membership, n=n, seed=0, test_fraction=0.5,
                            output=samples[-1])
    checks = check_data(membership_path=data.membership, source="digits",
                        sample_paths=samples, sample_sizes=SIZES, output=d / "checks.json")
    report = prune_mask(method="oneshot", settings=None, score_model=dense / "model.pt",
                        out_mask=d / "ticket" / "mask.pt", out_report=d / "ticket" / "mask.json",
                        sparsity=0.8)
    ticket = train_ticket(data=data, arch="resnet18", recipe=trained_digits["recipe"], seed=0,
                          sparsity=0.8, device="cpu", mask_path=d / "ticket" / "mask.pt",
                          start_path=dense / "rewind.pt", rewind_epoch=1,
                          out_model=d / "ticket" / "model.pt",
                          out_metrics=d / "ticket" / "metrics.json", threads=1)
    models = {"dense": (dense / "model.pt", 0.0, None), "oneshot": (d / "ticket" / "model.pt",
                                                                    0.8, d / "ticket" / "mask.pt")}
    out = {"dir": d, "data": data, "checks": checks, "mask_report": report, "ticket": ticket,
           "samples": samples, "metrics": [], "scores": [], "confidences": {}}
    for method, (model, sparsity, mask) in models.items():
        conf = d / method / "confidences.parquet"
        conf.parent.mkdir(exist_ok=True)
        ident = {"dataset": "digits", "arch": "resnet18", "seed": 0, "method": method,
                 "sparsity": sparsity, "imp_round": None}
        extract_confidences(data=data, model_path=model, dataset="digits", arch="resnet18",
                            sparsity=sparsity, device="cpu", batch_size=256, output=conf,
                            replicate=0, threads=1, num_workers=0, method=method,
                            expected=ident, mask_path=mask)
        out["confidences"][method] = conf
        metrics = [d / method / f"attack-n{n}" / "metrics.json" for n in SIZES]
        scores = [d / method / f"attack-n{n}" / "scores.parquet" for n in SIZES]
        for p in metrics:
            p.parent.mkdir(exist_ok=True)
        run_attacks_per_sample(confidences_path=conf, sample_paths=samples, sample_sizes=SIZES,
                               out_metrics=metrics, out_scores=scores, attacks=ATTACKS,
                               settings={}, features="softmax", seed=0, n_bootstrap=50,
                               replicate=0,
                               expected={"arch": "resnet18", "method": method,
                                         "sparsity": sparsity})
        out["metrics"] += metrics
        out["scores"] += scores
    return out


def test_the_data_check_records_what_it_checked(chain):
    c = chain["checks"]
    assert c["members"] == 300 and c["nonmembers"] == 300 and c["classes"] == 10
    assert c["sample_sizes"] == SIZES and c["largest_sample_size"] >= max(SIZES)
    assert json.loads((chain["dir"] / "checks.json").read_text()) == c


def test_the_mask_and_the_ticket_hold_the_requested_sparsity(chain):
    assert chain["mask_report"]["sparsity_prunable"] == pytest.approx(0.8, abs=1e-4)
    assert chain["ticket"]["measured_sparsity_prunable"] == pytest.approx(0.8, abs=1e-4)


def test_every_model_has_scores_and_results_for_every_sample_size(chain):
    for metrics, scores in zip(chain["metrics"], chain["scores"]):
        m = json.loads(metrics.read_text())
        assert {r["attack"] for r in m["attacks"]} == set(ATTACKS)
        s = pd.read_parquet(scores)
        assert m["sample_size"] == int(s["fold"].isin(["attack_train", "attack_test"]).sum())
        assert {f"score_{a}" for a in ATTACKS} <= set(s.columns)


def test_the_summaries_hold_every_model_and_seed(chain):
    d = chain["dir"]
    dense_metrics = chain["data"].membership.replace("membership.parquet", "metrics.json")
    training = summarize_training([dense_metrics, d / "ticket" / "metrics.json"],
                                  {"digits": chain["data"].membership}, d / "training.csv")
    assert list(training["method"]) == ["dense", "oneshot"]
    assert training["test_acc"].between(0, 1).all()
    attacks = summarize_attacks(chain["metrics"], chain["scores"], d / "attacks.csv",
                                n_bootstrap=50)
    assert set(attacks["method"]) == {"dense", "oneshot"}
    assert set(attacks["sample_size"]) == set(SIZES)
    assert set(attacks["replicate"]) == {"0", "mean"}
    assert len(attacks) == 2 * len(SIZES) * len(ATTACKS) * 2


def test_a_transfer_applies_one_models_attack_to_the_other(chain, tmp_path):
    conf = chain["confidences"]
    frame = transfer_attack(source_confidences=conf["dense"], sample_path=chain["samples"][1],
                            attack="logistic_regression", settings=None, features="softmax", seed=0,
                            n_bootstrap=50,
                            targets=[{"arch": "resnet18", "method": "dense", "sparsity": 0.0},
                                     {"arch": "resnet18", "method": "oneshot",
                                      "sparsity": 0.8}],
                            target_paths=[conf["dense"], conf["oneshot"]],
                            output=tmp_path / "transfer.csv")
    assert len(frame) == 2 and np.isfinite(frame["auc"]).all()
    with pytest.raises(ValueError, match="method='dense'.*method='oneshot'"):
        transfer_attack(source_confidences=conf["dense"], sample_path=chain["samples"][1],
                        attack="logistic_regression", settings=None, features="softmax", seed=0,
                        n_bootstrap=50,
                        targets=[{"arch": "resnet18", "method": "oneshot", "sparsity": 0.8}],
                        target_paths=[conf["dense"]], output=tmp_path / "t2.csv")


def test_the_reference_split_gives_each_reference_half_the_pool(chain, tmp_path):
    from lottery_mia.membership import read_membership

    paths = [tmp_path / f"ref{r}.parquet" for r in range(4)]
    inc = build_references(membership_path=chain["data"].membership, count=4, seed=0,
                           out_inclusion=tmp_path / "inclusion.parquet", out_memberships=paths)
    per = inc.groupby("reference")["included"].mean()
    assert np.allclose(per, 0.5, atol=0.01)
    for r, p in enumerate(paths):
        t = read_membership(p)
        ids = set(inc[(inc.reference == r) & inc.included].sample_id)
        assert set(t[t.member].sample_id) == ids
