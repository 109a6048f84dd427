"""Membership-inference attacks: a registry of attack kinds, run on the same attack sample.

Every attack kind registers a name (see :mod:`.base`); a fit-attack job runs the configured
ones on one model's confidence table and attack sample: each is fit (or thresholded) on
``attack_train`` rows only and evaluated on ``attack_test`` rows, and each result carries
95% bootstrap intervals (:func:`lottery_mia.stats.metrics.bootstrap_metrics`). Results are keyed
by the attack's name in ``metrics.json`` (a list of rows, one per attack), in the scores
table (a ``score_<name>`` column per attack) and in the summaries.

The jobs that run them on files are in :mod:`lottery_mia.jobs.attack`.
"""

from __future__ import annotations

import numpy as np

from ..confidences import check_table_identity, read_confidences
from ..io import log
from ..stats.metrics import chance_verdict, low_fpr_text
from ..stats.resampling import bootstrap_metrics
from ..vocabulary import REFERENCE, SAME_ROWS_METRICS
from .base import (ATTACKS, FEATURES, AttackData, AttackKind, AttackScores, attack_features,
                   get_attack, register_attack)

ATTACKS.load(__name__, skip=("base",))  # every other module registers its attacks

__all__ = ["ATTACKS", "FEATURES", "AttackData", "AttackKind", "AttackScores",
           "attack_features", "get_attack", "register_attack", "evaluate_attacks",
           "attack_data", "add_references", "add_parent", "check_attack_config", "SCORE_PREFIX",
           "scores_table"]

SCORE_PREFIX = "score_"
UNJUDGED_REASON = ("outside the references' inclusion design (no reference trained on the "
                   "row, or every one did): not scored")


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
                expected: dict | None = None, all_rows: bool = False) -> AttackData:
    """The target's confidence rows of an attack sample (with ``expected``, the table must
    be that model's: :func:`lottery_mia.confidences.check_table_identity`). With
    ``all_rows``, every other scored row of the target follows the sample's rows, in fold
    ``outside`` (reference attacks are evaluated on those their references can judge)."""
    import pandas as pd

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
    if all_rows:
        rest = conf.sample_id[~np.isin(conf.sample_id, sample["sample_id"].to_numpy())]
        others = conf.rows(rest)
        sample = pd.concat([sample, pd.DataFrame({
            "sample_id": others.sample_id, "label": others.label, "member": others.member,
            "fold": "outside"})], ignore_index=True)
        rows = conf.rows(sample["sample_id"].to_numpy())
    return AttackData(target=rows, sample=sample, features=features)


def rows_of(table, sample_ids, table_path, sample_path):
    """``table``'s rows of ``sample_ids``; an id it lacks is an error naming both files."""
    try:
        return table.rows(sample_ids)
    except KeyError as err:
        raise ValueError(f"{table_path} has no row for {err.args[0]} of the attack sample "
                         f"{sample_path}: the two were made from different membership "
                         "tables; delete them and rerun the workflow") from None


def reduced_rows_of(table, sample_ids, table_path, sample_path):
    """:func:`rows_of` as a :class:`~.reference_rows.ReferenceRows` (the per-row statistics
    of the reference attacks, the logits left in ``table_path``)."""
    from .reference_rows import ReferenceRows

    try:
        return ReferenceRows.of(table, sample_ids, table_path)
    except KeyError as err:
        raise ValueError(f"{table_path} has no row for {err.args[0]} of the attack sample "
                         f"{sample_path}: the two were made from different membership "
                         "tables; delete them and rerun the workflow") from None


def add_references(data: AttackData, reference_paths: list, inclusion_path,
                   target_confidences, reference_seeds: list | None = None) -> AttackData:
    """Attach reference models' rows, their inclusion, and the population rows (the
    target's scored non-members: RMIA's samples z) to ``data``. With ``reference_seeds``,
    each reference table must be of the target's dataset, arch, method and sparsity, trained
    with its seed."""
    from ..references import inclusion_matrix, read_inclusion

    inclusion = read_inclusion(inclusion_path)
    ids = data.sample["sample_id"].to_numpy()
    if reference_seeds is not None and len(reference_seeds) != len(reference_paths):
        raise ValueError(f"{len(reference_seeds)} reference seeds for "
                         f"{len(reference_paths)} reference tables")
    # the population's rows without the sensitivity column: SAMIA reads the references'
    # sensitivity back from their files when it samples its shadow rows, and never the
    # target's on population rows
    conf = read_confidences(target_confidences, sensitivity=False)
    pop_ids = conf.sample_id[~conf.member]
    # one reference table in memory at a time, reduced to what the attacks read
    # (:mod:`.reference_rows`): K x n statistics, not K x n x C logits
    data.references, data.population_references = [], []
    meta = data.target.metadata
    for k, path in enumerate(reference_paths):
        ref = read_confidences(path, sensitivity=False)  # read back where an attack needs it
        if reference_seeds:
            check_table_identity(ref, {key: meta.get(key) for key in
                                       ("dataset", "arch", "method", "sparsity")}
                                 | {"replicate": reference_seeds[k]}, path)
        data.references.append(reduced_rows_of(ref, ids, path, "the attack sample"))
        data.population_references.append(reduced_rows_of(ref, pop_ids, path,
                                                          target_confidences))
        del ref
    data.reference_in = inclusion_matrix(inclusion, ids, len(reference_paths))
    data.population = conf.rows(pop_ids)
    data.population_in = inclusion_matrix(inclusion, pop_ids, len(reference_paths))
    for k, r in enumerate(data.references):
        if not np.array_equal(r.member, data.reference_in[k]):
            raise ValueError(f"{reference_paths[k]} disagrees with {inclusion_path} on which "
                             "samples the reference trained on; rerun the workflow")
    return data


def add_parent(data: AttackData, parent_path, reference_parent_paths=(),
               reference_seeds: list | None = None) -> AttackData:
    """Attach the target's dense parent's rows (``parent_path``: the dense network of the
    target's dataset, arch and seed) to ``data``, aligned with its sample, and each
    reference's own dense parent's rows (``reference_parent_paths``, in the order of
    ``data.references``, reduced like them): what the pair attacks (:mod:`.pair`) read.
    A table of another model, or one that disagrees on membership, is refused."""
    from ..vocabulary import DENSE

    ids = data.sample["sample_id"].to_numpy()
    meta = data.target.metadata
    same = {k: meta.get(k) for k in ("dataset", "arch", "replicate") if meta.get(k) is not None}
    parent = read_confidences(parent_path)
    check_table_identity(parent, same | {"method": DENSE, "sparsity": 0.0}, parent_path)
    data.parent = rows_of(parent, ids, parent_path, "the attack sample")
    if not np.array_equal(data.parent.member, data.is_member):
        raise ValueError(f"{parent_path} disagrees with the target's table on membership: "
                         "the dense network and its ticket must be scored on the same "
                         "membership table; rerun the workflow")
    del parent
    paths = list(reference_parent_paths or [])
    if paths:
        if reference_seeds is not None and len(reference_seeds) != len(paths):
            raise ValueError(f"{len(reference_seeds)} reference seeds for {len(paths)} "
                             "reference parents")
        data.parent_references = []
        for k, path in enumerate(paths):
            ref = read_confidences(path)
            want = {key: same[key] for key in ("dataset", "arch") if key in same}
            if reference_seeds:
                want["replicate"] = reference_seeds[k]
            check_table_identity(ref, want | {"method": DENSE, "sparsity": 0.0}, path)
            rows = reduced_rows_of(ref, ids, path, "the attack sample")
            if data.reference_in is not None and \
                    not np.array_equal(rows.member, data.reference_in[k]):
                raise ValueError(f"{path} disagrees with reference {k}'s ticket on which "
                                 "samples it trained on; rerun the workflow")
            data.parent_references.append(rows)
            del ref
    return data


def evaluate_attacks(data: AttackData, attacks: list[str], settings: dict, *, seed: int,
                     n_bootstrap: int) -> tuple[list[dict], dict]:
    """Fit (or threshold) every attack of ``attacks`` on the attack-train rows of ``data``
    and evaluate it with 95% bootstrap intervals on the rows its kind is evaluated on
    (:func:`lottery_mia.vocabulary.evaluated`: attack-test rows, or for reference attacks
    every row their references can judge outside the attack-train fold, which then also
    carry ``same_rows_*`` metrics on the judged attack-test rows, to compare with the
    classifier attacks; the ``n_unjudged`` rows outside the inclusion design get a nan
    score): the result rows (one per attack) and each attack's score of every row (by
    attack name)."""
    rows, scores = [], {}
    import time

    for name in attacks:
        kind = get_attack(name)
        t0 = time.perf_counter()
        out: AttackScores = kind.factory(settings.get(name), seed).fit_score(data)
        seconds = time.perf_counter() - t0  # its cost: fit and score, references aside
        extra = {}
        if kind.kind == REFERENCE:  # only rows the references can judge are scored
            judged = data.judged()
            out.score = np.where(judged, out.score, np.nan)
            extra = {"n_unjudged": int((~judged).sum()),
                     "unjudged_reason": UNJUDGED_REASON if (~judged).any() else ""}
        rows_eval = data.evaluated(kind.kind, out.score)
        y_eval = data.is_member[rows_eval]
        if y_eval.all() or not y_eval.any():
            raise ValueError(f"attack {name!r}: the rows it can be evaluated on hold "
                             f"{int(y_eval.sum())} members and {int((~y_eval).sum())} "
                             "non-members; a reference attack needs both among the rows "
                             "that some references trained on and others did not")
        labels = data.sample["label"].to_numpy()  # the design's strata (with membership)
        m = bootstrap_metrics(data.is_member[rows_eval], out.score[rows_eval], out.threshold,
                              n_boot=n_bootstrap, seed=seed, strata=labels[rows_eval])
        if kind.kind == REFERENCE:
            test = data.test & np.isfinite(out.score)
            same = bootstrap_metrics(data.is_member[test], out.score[test],
                                     out.threshold, n_boot=n_bootstrap, seed=seed,
                                     strata=labels[test])
            m.update({f"same_rows_{k}{x}": same[f"{k}{x}"] for k in SAME_ROWS_METRICS
                      for x in ("", "_ci_low", "_ci_high")})
            m.update(extra)
        row = {"attack": name, "kind": kind.kind, "threshold": out.threshold, **m,
               **{k: v for k, v in out.info.items()}, "attack_seconds": round(seconds, 3)}
        acc = "balanced_accuracy" if kind.kind == REFERENCE else "accuracy"  # rows unequal
        row["verdict_accuracy"] = chance_verdict(m[f"{acc}_ci_low"], m[f"{acc}_ci_high"])
        row["verdict_auc"] = chance_verdict(m["auc_ci_low"], m["auc_ci_high"])
        rows.append(row)
        scores[name] = out.score
        log(f"{name:>20}: {acc.replace('_', ' ')} {m[acc]:.3f} [{m[f'{acc}_ci_low']:.3f}, "
            f"{m[f'{acc}_ci_high']:.3f}]  auc {m['auc']:.3f} [{m['auc_ci_low']:.3f}, "
            f"{m['auc_ci_high']:.3f}] ({row['verdict_auc']})  {low_fpr_text(m)}"
            + ("" if out.info.get("converged", True) else
               f"  did not converge: raise attack.{name}.max_iter"))
    return rows, scores


def scores_table(data: AttackData, by_attack: dict):
    """A fit-attack result's scores table (``scores.parquet``): every row of the attack
    sample (id, label, membership, fold, whether the model classifies it correctly) and each
    attack's score of it (``score_<attack>``, from :func:`evaluate_attacks`)."""
    import pandas as pd

    scores = pd.DataFrame({"sample_id": data.target.sample_id, "label": data.target.label,
                           "member": data.is_member, "fold": data.sample["fold"].to_numpy(),
                           "correct": data.target.correct})
    for name, score in by_attack.items():
        scores[SCORE_PREFIX + name] = score
    return scores


def model_method(meta: dict) -> str:
    """The pruning method of a model's confidence-table metadata."""
    return str(meta["method"])
