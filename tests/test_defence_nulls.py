"""The null of every registered defence, through the project's own code.

For each defence a dense network trains with it through the training job and is scored by
the scoring job. Its rows that no network trained on (the split's non-members) are then
split at random, again and again, into pseudo-members and pseudo-non-members, the attack
sample is drawn from them by the pipeline's sampler, and the paper's attack (the MLP) and
the loss attack run through ``evaluate_attacks``. Nothing tells the two halves apart, so
over 40 splits the mean AUC must be 0.50 +- 0.01 and the mean TPR at 10% FPR at most 0.12
(over the splits where it is measurable), whatever the defence did to the network's
outputs (a defence that made the rows' order, ids or classes a signal, or an evaluation
that read the membership flags, would fail).
A defence added to the registry fails here until it is given test settings below.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import digits_data
from lottery_mia.defences import DEFENCES

SETTINGS = {  # each registered defence, at a strength it protects with
    "dpsgd": {"target_epsilon": 4.0, "delta": 1e-5, "max_grad_norm": 1.0},
    "ppb": {"strength": 1.0},
}
REPETITIONS = 40
ATTACK_SETTINGS = {"mlp": {"hidden_layer_sizes": [32], "max_iter": 200}}


def test_every_registered_defence_has_null_test_settings():
    assert set(DEFENCES) == set(SETTINGS)


@pytest.fixture(scope="module", params=sorted(SETTINGS))
def defended_table(request, tmp_path_factory):
    from lottery_mia.jobs.score import extract_confidences
    from lottery_mia.jobs.train import train_dense

    name = request.param
    tmp = tmp_path_factory.mktemp(f"null-{name}")
    data = digits_data(tmp, 200, 1400)
    recipe = dict(width=4, epochs=3, batch_size=50, lr=0.05, eval_every=3, num_workers=0,
                  defence={name: SETTINGS[name]})
    train_dense(data=data, arch="resnet18", recipe=recipe, seed=0, rewind_epoch=0,
                device="cpu", out_model=tmp / "model.pt", out_init=tmp / "init.pt",
                out_rewind=tmp / "rewind.pt", out_metrics=tmp / "metrics.json", threads=1)
    table = extract_confidences(data=data, model_path=tmp / "model.pt", dataset="digits",
                                arch="resnet18", sparsity=0.0, device="cpu",
                                batch_size=512, output=tmp / "confidences.parquet",
                                replicate=0, threads=1, num_workers=0, method="dense")
    return name, table


def test_a_defended_network_gives_chance_on_rows_it_never_trained_on(defended_table):
    from lottery_mia.attack_samples import make_attack_sample
    from lottery_mia.attacks import AttackData, evaluate_attacks

    name, table = defended_table
    outside = table.take(np.flatnonzero(~table.member))
    assert len(outside) == 1400
    aucs = {"mlp": [], "loss": []}
    tprs = {"mlp": [], "loss": []}
    for rep in range(REPETITIONS):
        rng = np.random.default_rng(rep)
        pseudo = np.zeros(len(outside), bool)
        pseudo[rng.permutation(len(outside))[:len(outside) // 2]] = True
        membership = pd.DataFrame({"sample_id": outside.sample_id, "pool": "all",
                                   "pool_index": np.arange(len(outside)),
                                   "label": outside.label, "member": pseudo, "scored": True})
        sample = make_attack_sample(membership, 1000, seed=rep)
        rows = outside.rows(sample["sample_id"].to_numpy())
        rows.member = sample["member"].to_numpy().astype(bool)
        data = AttackData(target=rows, sample=sample)
        results, _ = evaluate_attacks(data, ["mlp", "loss"], ATTACK_SETTINGS, seed=rep,
                                      n_bootstrap=200)
        for r in results:
            aucs[r["attack"]].append(r["auc"])
            tprs[r["attack"]].append(r["tpr_at_fpr_0.1"])
    for attack in aucs:
        # a TPR at 10% FPR is nan where ties at the cut leave it unmeasurable (an MLP that
        # learnt nothing from a DP network's flat outputs gives most rows one score): the
        # mean runs over the splits where it was measured, and most must be measured
        measured = np.isfinite(tprs[attack])
        mean_auc, mean_tpr = float(np.mean(aucs[attack])), float(np.mean(
            np.asarray(tprs[attack])[measured]))
        print(f"null of {name}, {attack}: mean AUC {mean_auc:.4f}, mean TPR at 10% FPR "
              f"{mean_tpr:.4f} ({int(measured.sum())} of {REPETITIONS} measured)")
        assert abs(mean_auc - 0.5) <= 0.01, (name, attack, mean_auc)
        assert measured.sum() >= 10, (name, attack, int(measured.sum()))
        assert mean_tpr <= 0.12, (name, attack, mean_tpr)
