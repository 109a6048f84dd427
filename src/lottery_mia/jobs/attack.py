"""The attack jobs of the DAG: every attack on one model (rule ``fit_attack``, one job per
model over all of its dataset's sample sizes) and the transfer of one model's attack to the
others (rule ``transfer_attack``).

Transfer: the source model's classifier attack is refit from the source's own attack-train
rows (deterministic for a fixed seed) and applied to each target's attack-test rows, so no
fitted model is ever written to disk and read back (nothing is unpickled).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..attacks import (add_parent, add_references, attack_data, attack_features,
                       evaluate_attacks, get_attack, model_method, rows_of, scores_table)
from ..confidences import check_table_identity, read_confidences
from ..io import atomic_path, log, write_json
from ..reporting.summaries import write_scores
from ..stats.metrics import chance_verdict
from ..stats.resampling import bootstrap_metrics
from ..vocabulary import FOLDS

__all__ = ["run_attacks", "run_attacks_per_sample", "transfer_attack"]


def run_attacks(*, confidences_path, sample_path, attacks: list[str], settings: dict,
                features: str, seed: int, n_bootstrap: int, out_metrics, out_scores,
                replicate: int | None = None, reference_paths: list | None = None,
                inclusion_path=None, expected: dict | None = None,
                reference_seeds: list | None = None, parent_path=None,
                reference_parent_paths: list | None = None, input_features=None) -> dict:
    """Run every attack of ``attacks`` on one model and one attack sample (attacks that
    need reference models get ``reference_paths`` and the ``inclusion_path`` table; pair
    attacks the dense parent's table ``parent_path`` and, with references, the
    references' parents ``reference_parent_paths``; attacks that read the inputs the
    ``input_features`` table and every scored row of the target). ``expected``: the
    identity of the model the job was asked for (its table's metadata must match),
    ``reference_seeds`` the seeds of the references, in path order."""
    needs = [a for a in attacks if get_attack(a).needs_references]
    pairs = [a for a in attacks if get_attack(a).needs_parent]
    inputs = [a for a in attacks if get_attack(a).needs_inputs]
    data = attack_data(confidences_path, sample_path, features, expected,
                       all_rows=bool(needs or inputs))
    if inputs:
        if input_features is None:
            raise ValueError(f"attacks {inputs} need the input features of the rows (the "
                             "input_features rule)")
        from .split import read_input_features

        data.inputs = read_input_features(input_features, data.sample["sample_id"].to_numpy())
    if needs:
        if not reference_paths or inclusion_path is None:
            raise ValueError(f"attacks {needs} need reference models (config key "
                             "references.count and the reference grid)")
        add_references(data, reference_paths, inclusion_path, confidences_path,
                       reference_seeds)
    if pairs:
        if parent_path is None:
            raise ValueError(f"attacks {pairs} need the target's dense parent: they run on "
                             "pruned networks only")
        with_refs = [a for a in pairs if a in needs]
        if with_refs and len(reference_parent_paths or []) != len(reference_paths or []):
            raise ValueError(f"attacks {with_refs} need the dense parent of every reference "
                             "ticket")
        add_parent(data, parent_path, reference_parent_paths if with_refs else (),
                   reference_seeds)
    meta = data.target.metadata
    rows, by_attack = evaluate_attacks(data, attacks, settings, seed=seed,
                                       n_bootstrap=n_bootstrap)
    scores = scores_table(data, by_attack)
    result = {"dataset": meta.get("dataset"), "arch": meta.get("arch"),
              "method": model_method(meta), "sparsity": meta.get("sparsity"),
              "achieved_sparsity": meta.get("achieved_sparsity", meta.get("sparsity")),
              "replicate": replicate,
              "sample_size": int(data.sample["fold"].isin(FOLDS[:2]).sum()),
              "features": features, "seed": seed,
              "attacks": rows}
    write_scores(scores, result, out_scores)
    write_json(result, out_metrics)
    return result


def run_attacks_per_sample(*, confidences_path, sample_paths: list, sample_sizes: list,
                           out_metrics: list, out_scores: list, **kw) -> list[dict]:
    """:func:`run_attacks` on one model for each attack sample (one per sample size, in the
    order of ``sample_sizes``; the outputs in the same order)."""
    if not len(sample_paths) == len(sample_sizes) == len(out_metrics) == len(out_scores):
        raise ValueError("sample_paths, sample_sizes, out_metrics and out_scores differ in "
                         "length")
    results = []
    for n, sample, metrics, scores in zip(sample_sizes, sample_paths, out_metrics, out_scores):
        log(f"attack sample n={n}: {sample}")
        result = run_attacks(confidences_path=confidences_path, sample_path=sample,
                             out_metrics=metrics, out_scores=scores, **kw)
        if result["sample_size"] != int(n):
            raise ValueError(f"{sample} holds {result['sample_size']} rows, not n={n}; "
                             "delete it and rerun the attack_sample rule")
        results.append(result)
    return results


def transfer_attack(*, source_confidences, sample_path, attack: str, settings: dict | None,
                    features: str, seed: int, n_bootstrap: int, targets: list[dict],
                    target_paths: list, output) -> pd.DataFrame:
    """Fit ``attack`` on the source model's attack-train rows; evaluate it on every target
    model's attack-test rows (``targets``: dicts with arch and sparsity, in path order)."""
    from ..attacks.classifiers import ClassifierAttack

    source = attack_data(source_confidences, sample_path, features)
    clf = get_attack(attack).factory(settings, seed)
    if not isinstance(clf, ClassifierAttack):
        raise ValueError(f"config key transfer.attack: {attack!r} is not a classifier attack")
    clf.fit(source.feature_matrix()[source.train], source.is_member[source.train].astype(int))
    meta = source.target.metadata
    test_ids = source.sample.loc[source.test, "sample_id"].to_numpy()
    y_test = source.is_member[source.test]
    out = []
    for target, path in zip(targets, target_paths, strict=True):
        table = read_confidences(path)
        check_table_identity(table, {k: target[k] for k in ("arch", "method", "sparsity")
                                     if k in target}, path)
        conf = rows_of(table, test_ids, path, sample_path)
        if not np.array_equal(conf.member, y_test):
            raise ValueError(f"{path} disagrees with {sample_path} on membership; rerun")
        score = clf.score(attack_features(conf, features))
        m = bootstrap_metrics(y_test, score, clf.threshold, n_boot=n_bootstrap, seed=seed,
                              strata=conf.label)
        out.append({"attack": attack, "source_arch": meta.get("arch"),
                    "source_method": model_method(meta),
                    "source_sparsity": meta.get("sparsity"),
                    "target_arch": target["arch"],
                    "target_method": target["method"],
                    "target_sparsity": float(target["sparsity"]),
                    **m, "verdict_accuracy": chance_verdict(m["accuracy_ci_low"],
                                                            m["accuracy_ci_high"])})
        log(f"transfer {meta.get('arch')}@{meta.get('sparsity')} -> "
            f"{target['arch']}@{target['sparsity']}: accuracy {m['accuracy']:.4f} "
            f"[{m['accuracy_ci_low']:.4f}, {m['accuracy_ci_high']:.4f}]")
    frame = pd.DataFrame(out)
    with atomic_path(output) as tmp:
        frame.to_csv(tmp, index=False)
    return frame
