"""Membership-inference attacks: a registry of attack kinds, run on the same attack sample.

Every attack kind registers a name (see :mod:`.base`); a fit-attack job runs the configured
ones on one model's confidence table and attack sample: each is fit (or thresholded) on
``attack_train`` rows only and evaluated on ``attack_test`` rows, and each result carries
95% bootstrap intervals (:func:`lottery_mia.metrics.bootstrap_metrics`). Results are keyed
by the attack's name in ``metrics.json`` (a list of rows, one per attack), in the scores
table (a ``score_<name>`` column per attack) and in the summaries.

Transfer: the source model's classifier attack is refit from the source's own attack-train
rows (deterministic for a fixed seed) and applied to each target's attack-test rows, so no
fitted model is ever written to disk and read back (nothing is unpickled).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pandas is imported when an attack runs, not at DAG build
    import pandas as pd

from ..confidences import check_table_identity, read_confidences
from ..io import atomic_path, log, write_json
from ..metrics import bootstrap_metrics, chance_verdict
from .base import (ATTACKS, FEATURES, AttackData, AttackKind, AttackScores, attack_features,
                   get_attack, register_attack)

for _mod in pkgutil.iter_modules(__path__):  # every module here registers its attacks
    if _mod.name not in ("base",):
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = ["ATTACKS", "FEATURES", "AttackData", "AttackKind", "AttackScores",
           "attack_features", "get_attack", "register_attack", "run_attacks",
           "transfer_attack", "attack_data", "check_attack_config"]

SCORE_PREFIX = "score_"


def check_attack_config(names: list, settings_of: dict, cache_dir=None) -> list[str]:
    """Problems with the configured attacks (unknown names, unknown settings, values the
    estimator refuses; ``cache_dir`` remembers the estimators' verdicts)."""
    from .classifiers import ESTIMATORS, cached_value_problems, check_settings

    problems = []
    for name in names:
        if name not in ATTACKS:
            problems.append(f"config key attack.models/attack.baselines: unknown attack "
                            f"{name!r}; choose from {sorted(ATTACKS)}")
        elif name in ESTIMATORS:
            problems += (check_settings(name, settings_of.get(name))
                         or cached_value_problems(name, settings_of.get(name), cache_dir))
        elif settings_of.get(name):
            try:  # an attack checks its own settings when it is built
                ATTACKS[name].factory(settings_of.get(name), 0)
            except (ValueError, TypeError) as err:
                problems.append(f"config key attack.{name}: {err}")
    return problems


def attack_data(confidences_path, sample_path, features: str,
                expected: dict | None = None) -> AttackData:
    """The target's confidence rows of an attack sample (with ``expected``, the table must
    be that model's: :func:`lottery_mia.confidences.check_table_identity`)."""
    from ..attack_samples import read_attack_sample

    conf = read_confidences(confidences_path)
    if expected:
        check_table_identity(conf, expected, confidences_path)
    sample = read_attack_sample(sample_path)
    rows = rows_of(conf, sample["sample_id"].to_numpy(), confidences_path, sample_path)
    if not np.array_equal(rows.member, sample["member"].to_numpy()):
        raise ValueError(f"{confidences_path} and {sample_path} disagree on membership: one "
                         "of them is stale; rerun the workflow")
    if not np.array_equal(rows.label, sample["label"].to_numpy()):
        raise ValueError(f"{confidences_path} and {sample_path} disagree on labels: one of "
                         "them is stale; rerun the workflow")
    return AttackData(target=rows, sample=sample, features=features)


def rows_of(table, sample_ids, table_path, sample_path):
    """``table``'s rows of ``sample_ids``; an id it lacks is an error naming both files."""
    try:
        return table.rows(sample_ids)
    except KeyError as err:
        raise ValueError(f"{table_path} has no row for {err.args[0]} of the attack sample "
                         f"{sample_path}: the two were made from different membership "
                         "tables; delete them and rerun the workflow") from None


def add_references(data: AttackData, reference_paths: list, inclusion_path,
                   target_confidences, reference_seeds: list | None = None) -> AttackData:
    """Attach reference models' rows, their inclusion, and the population rows (target
    non-members outside the attack sample) to ``data``. With ``reference_seeds``, each
    reference table must be of the target's dataset, arch, method and sparsity, trained
    with its seed."""
    from ..references import inclusion_matrix, read_inclusion

    inclusion = read_inclusion(inclusion_path)
    ids = data.sample["sample_id"].to_numpy()
    refs = [read_confidences(p) for p in reference_paths]
    if reference_seeds:
        meta = data.target.metadata
        for path, ref, seed in zip(reference_paths, refs, reference_seeds, strict=True):
            check_table_identity(ref, {k: meta.get(k) for k in
                                       ("dataset", "arch", "method", "sparsity")}
                                 | {"replicate": seed}, path)
    conf = read_confidences(target_confidences)
    outside = ~np.isin(conf.sample_id, ids) & ~conf.member
    pop_ids = conf.sample_id[outside]
    data.references = [rows_of(r, ids, p, "the attack sample")
                       for r, p in zip(refs, reference_paths)]
    data.reference_in = inclusion_matrix(inclusion, ids, len(refs))
    data.population = conf.rows(pop_ids)
    data.population_references = [rows_of(r, pop_ids, p, target_confidences)
                                  for r, p in zip(refs, reference_paths)]
    data.population_in = inclusion_matrix(inclusion, pop_ids, len(refs))
    for k, r in enumerate(data.references):
        if not np.array_equal(r.member, data.reference_in[k]):
            raise ValueError(f"{reference_paths[k]} disagrees with {inclusion_path} on which "
                             "samples the reference trained on; rerun the workflow")
    return data


def run_attacks(*, confidences_path, sample_path, attacks: list[str], settings: dict,
                features: str, seed: int, n_bootstrap: int, out_metrics, out_scores,
                replicate: int | None = None, reference_paths: list | None = None,
                inclusion_path=None, expected: dict | None = None,
                reference_seeds: list | None = None) -> dict:
    """Run every attack of ``attacks`` on one model and one attack sample (attacks that
    need reference models get ``reference_paths`` and the ``inclusion_path`` table).
    ``expected``: the identity of the model the job was asked for (its table's metadata
    must match), ``reference_seeds`` the seeds of the references, in path order."""
    import pandas as pd

    data = attack_data(confidences_path, sample_path, features, expected)
    needs = [a for a in attacks if get_attack(a).needs_references]
    if needs:
        if not reference_paths or inclusion_path is None:
            raise ValueError(f"attacks {needs} need reference models (config key "
                             "references.count and the reference grid)")
        add_references(data, reference_paths, inclusion_path, confidences_path,
                       reference_seeds)
    meta = data.target.metadata
    test = data.test
    y_test = data.is_member[test]
    scores = pd.DataFrame({"sample_id": data.target.sample_id, "label": data.target.label,
                           "member": data.is_member, "fold": data.sample["fold"].to_numpy(),
                           "correct": data.target.correct})
    rows = []
    for name in attacks:
        kind = get_attack(name)
        out: AttackScores = kind.factory(settings.get(name), seed).fit_score(data)
        m = bootstrap_metrics(y_test, out.score[test], out.threshold, n_boot=n_bootstrap,
                              seed=seed)
        row = {"attack": name, "kind": kind.kind, "threshold": out.threshold, **m,
               **{k: v for k, v in out.info.items()}}
        row["verdict_accuracy"] = chance_verdict(m["accuracy_ci_low"], m["accuracy_ci_high"])
        row["verdict_auc"] = chance_verdict(m["auc_ci_low"], m["auc_ci_high"])
        rows.append(row)
        scores[SCORE_PREFIX + name] = out.score
        log(f"{name:>20}: accuracy {m['accuracy']:.3f} [{m['accuracy_ci_low']:.3f}, "
            f"{m['accuracy_ci_high']:.3f}]  auc {m['auc']:.3f} [{m['auc_ci_low']:.3f}, "
            f"{m['auc_ci_high']:.3f}]  tpr@1%fpr {m['tpr_at_fpr_0.01']:.3f} "
            f"({row['verdict_auc']})"
            + ("" if out.info.get("converged", True) else
               f"  did not converge: raise attack.{name}.max_iter"))
    result = {"dataset": meta.get("dataset"), "arch": meta.get("arch"),
              "method": model_method(meta), "sparsity": meta.get("sparsity"),
              "achieved_sparsity": meta.get("achieved_sparsity", meta.get("sparsity")),
              "replicate": replicate,
              "sample_size": int(len(data.sample)), "features": features, "seed": seed,
              "attacks": rows}
    with atomic_path(out_scores) as tmp:
        scores.to_parquet(tmp, index=False)
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


def model_method(meta: dict) -> str:
    """The pruning method of a model's metadata (tables of earlier versions: dense at
    sparsity 0, else one-shot)."""
    if meta.get("method"):
        return str(meta["method"])
    return "dense" if not meta.get("sparsity") else "oneshot"


def transfer_attack(*, source_confidences, sample_path, attack: str, settings: dict | None,
                    features: str, seed: int, n_bootstrap: int, targets: list[dict],
                    target_paths: list, output) -> pd.DataFrame:
    """Fit ``attack`` on the source model's attack-train rows; evaluate it on every target
    model's attack-test rows (``targets``: dicts with arch and sparsity, in path order)."""
    import pandas as pd

    from .classifiers import ClassifierAttack

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
        m = bootstrap_metrics(y_test, score, clf.threshold, n_boot=n_bootstrap, seed=seed)
        out.append({"attack": attack, "source_arch": meta.get("arch"),
                    "source_method": model_method(meta),
                    "source_sparsity": meta.get("sparsity"),
                    "target_arch": target["arch"],
                    "target_method": target.get("method", model_method(target)),
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
