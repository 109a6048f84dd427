"""lottery_mia.attacks.reference_rows: references reduced to what the attacks read give the
attacks' numbers exactly, and no reference's n x C logits stay in memory."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lottery_mia.attack_samples import make_attack_sample
from lottery_mia.attacks import add_references, evaluate_attacks
from lottery_mia.attacks.reference_rows import ReferenceRows
from lottery_mia.confidences import ConfidenceTable, read_confidences, write_confidences

K, N, C = 4, 400, 12


def _world(tmp_path):
    rng = np.random.default_rng(3)
    ids = np.arange(N)
    label = ids % C
    member = np.r_[np.ones(N // 2, bool), np.zeros(N // 2, bool)]
    membership = pd.DataFrame({"sample_id": ids, "pool": "all", "pool_index": ids,
                               "label": label, "member": member, "scored": True})
    sample = make_attack_sample(membership, 200, seed=1)
    inc = np.zeros((K, N), bool)
    for j in range(0, K, 2):
        pick = rng.random(N) < 0.5
        inc[j], inc[j + 1] = pick, ~pick

    def logits(trained):
        z = rng.normal(size=(N, C)).astype(np.float32)
        z[ids, label] += np.where(trained, 4.0, 2.5) + rng.normal(0, 1, N)
        return z

    write_confidences(ConfidenceTable.from_logits(ids, label, member, logits(member)),
                      tmp_path / "target.parquet")
    paths = []
    for j in range(K):
        paths.append(tmp_path / f"ref-{j}.parquet")
        write_confidences(ConfidenceTable.from_logits(ids, label, inc[j], logits(inc[j])),
                          paths[-1])
    pd.DataFrame({"reference": np.repeat(np.arange(K), N), "sample_id": np.tile(ids, K),
                  "included": inc.ravel()}).to_parquet(tmp_path / "inclusion.parquet")
    sample.to_parquet(tmp_path / "sample.parquet", index=False)
    return paths, sample


def test_reduced_rows_hold_the_tables_statistics_and_read_logits_back(tmp_path):
    paths, _ = _world(tmp_path)
    table = read_confidences(paths[0])
    ids = table.sample_id[::-3]
    rows = ReferenceRows.of(table, ids, paths[0])
    part = table.rows(ids)
    assert np.array_equal(rows.phi_views, part.scaled_logit_views())
    assert np.array_equal(rows.log_p_true, part.log_probs[np.arange(len(part)), part.label])
    assert np.array_equal(rows.logits_at([0, 5, 2]), part.logits[[0, 5, 2]])
    taken = rows.take([4, 1])
    assert np.array_equal(taken.sample_id, part.sample_id[[4, 1]])
    with pytest.raises(KeyError, match="sample_id 99999"):
        ReferenceRows.of(table, [99999], paths[0])


def test_every_reference_attack_scores_the_same_from_reduced_rows(tmp_path):
    """The same numbers as from the whole tables (the code before the reduction held them)."""
    paths, sample = _world(tmp_path)
    from lottery_mia.attacks import attack_data
    from lottery_mia.references import inclusion_matrix, read_inclusion

    names = ["lira_online", "lira_offline", "rmia", "shadow_mlp"]
    settings = {"shadow_mlp": {"hidden_layer_sizes": [16], "max_iter": 200}}
    reduced = add_references(
        attack_data(tmp_path / "target.parquet", tmp_path / "sample.parquet", "softmax",
                    all_rows=True),
        paths, tmp_path / "inclusion.parquet", tmp_path / "target.parquet")
    assert all(isinstance(r, ReferenceRows) for r in reduced.references)
    assert not any(hasattr(r, "logits") for r in reduced.references)  # no n x C in memory
    whole = attack_data(tmp_path / "target.parquet", tmp_path / "sample.parquet", "softmax",
                        all_rows=True)
    inclusion = read_inclusion(tmp_path / "inclusion.parquet")
    ids = whole.sample["sample_id"].to_numpy()
    conf = read_confidences(tmp_path / "target.parquet")
    pop = conf.sample_id[~conf.member]
    tables = [read_confidences(p) for p in paths]
    whole.references = [t.rows(ids) for t in tables]
    whole.reference_in = inclusion_matrix(inclusion, ids, K)
    whole.population = conf.rows(pop)
    whole.population_references = [t.rows(pop) for t in tables]
    whole.population_in = inclusion_matrix(inclusion, pop, K)
    rows_a, scores_a = evaluate_attacks(reduced, names, settings, seed=0, n_bootstrap=50)
    rows_b, scores_b = evaluate_attacks(whole, names, settings, seed=0, n_bootstrap=50)
    for name in names:
        np.testing.assert_array_equal(scores_a[name], scores_b[name])
    for a, b in zip(rows_a, rows_b):
        assert a["auc"] == b["auc"] and a["threshold"] == b["threshold"]
