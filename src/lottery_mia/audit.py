"""Audit any model's outputs: every membership-inference attack the inputs allow, run on
logits that any model produced (not only the pipeline's networks), with the pipeline's own
code, intervals and low-FPR rules.

Two entry points over the same code: :func:`audit` (Python) and ``lottery-mia audit``
(:mod:`lottery_mia.cli`). Both read the tables below, check them, turn them into the
pipeline's own objects (:class:`~lottery_mia.confidences.ConfidenceTable`, the attack
sample of :func:`~lottery_mia.attack_samples.make_attack_sample`, the reference inclusion
table of :mod:`lottery_mia.references`), written in the pipeline's formats, and call the
attack code the pipeline's fit-attack job (:func:`lottery_mia.jobs.attack.run_attacks`)
calls on them: :func:`~lottery_mia.attacks.attack_data`,
:func:`~lottery_mia.attacks.add_references` and
:func:`~lottery_mia.attacks.evaluate_attacks`. The attacks, their fitting, the rows each is
evaluated on, the bootstrap intervals, the metrics and the scores are those of a pipeline
run (``tests/test_audit.py`` checks they are equal, number for number).

Input format
============

**Target** (one Parquet file, or a pandas DataFrame in Python): one row per sample the
model was or was not trained on.

==========  ===================  ===========================================================
column      type                 meaning
==========  ===================  ===========================================================
sample_id   integer              the sample's id, unique (any integers: they link the
                                 target's rows to the references' rows)
label       integer              its true class, 0 .. C-1
logits      list of C floats     the model's raw outputs (before softmax) on the sample; the
                                 same C >= 2 on every row, finite. Kept as float32, as the
                                 pipeline scores its own networks
member      bool (or 0/1)        True: the sample was in the model's training set; False:
                                 the model never trained on it. The truth the attacks are
                                 evaluated against (classifier and threshold attacks also
                                 learn from it on the attack-train fold)
==========  ===================  ===========================================================

Other columns are ignored. Rows are used in the table's order, as the pipeline uses its
confidence tables' (the attack sample and the shadow model's training rows are seeded
draws over them): the same table, seed and settings give the same numbers; a table
exported from a pipeline run in its own order gives exactly the pipeline's.

**References** (optional; one or more Parquet files, or DataFrames): K reference models
trained like the target on other subsets of the same data, one row per reference and
sample (long format).

==========  ===================  ===========================================================
column      type                 meaning
==========  ===================  ===========================================================
reference   integer or string    which reference model. May be left out of a file that
                                 holds a single reference: the file's name (without
                                 ``.parquet``) then names it
sample_id   integer              a sample id of the target; every reference needs a row
                                 for every target sample (rows of other ids are ignored)
logits      list of C floats     the reference's logits on the sample (same C as the target)
included    bool (or 0/1)        True: the reference trained on the sample
label       integer, optional    if given, must equal the target's label of the sample
==========  ===================  ===========================================================

K must be even and at least 2 (the pipeline's design, after Carlini et al.: each sample is
IN for about half of the references; 16 or more for per-sample variances), and each
reference needs IN and OUT samples among the target's. RMIA's ``a: auto`` tunes ``a`` on
one reference and needs K >= 4; with fewer, give ``a`` (``attack_settings={"rmia": {"a":
0.3}}``) or RMIA is left out (and the report says why).

**Attack sample** (optional Parquet, e.g. a pipeline's ``attack_samples/n<N>.parquet``):
``sample_id`` and ``fold`` (``attack_train`` or ``attack_test``), optionally ``label`` and
``member`` (which must agree with the target); each fold must hold as many members as
non-members of every class. Without it the audit draws one exactly as the pipeline does
(:func:`~lottery_mia.attack_samples.make_attack_sample` with ``sample_size``, ``seed`` and
``test_fraction``, over the target's rows in their order): n/2 members and n/2
non-members, class-stratified, in two disjoint folds. The default n uses every
member/non-member pair of the same class, at most :data:`DEFAULT_MAX_SAMPLE` rows.

What runs
=========

Every attack the inputs allow (or those of ``attacks``): the classifier attacks (``mlp``,
the paper's, ``svm``, ``random_forest``, ``logistic_regression``, ``gradient_boosting``:
fit on the attack-train fold, evaluated on the attack-test fold) and the threshold attacks
(``loss``, ``confidence``, ``entropy``, ``modified_entropy``: threshold chosen on
attack-train, evaluated on attack-test); with references also ``lira_online``,
``lira_offline``, ``rmia`` and ``shadow_mlp``, evaluated on every row of the target that
their references can judge (IN for some reference and OUT for another; the others are
left out, counted in ``n_unjudged`` with the reason, and their scores are nan), less the
attack-train rows where their threshold is placed (they learn nothing from the target's
membership; ``same_rows_*`` gives them on the judged attack-test rows). RMIA's population samples are the
target's non-members, as in the pipeline. Every metric carries a 95% percentile-bootstrap
interval (``n_bootstrap`` resamples, members and non-members resampled separately); a TPR
at FPR x is reported only where at least 10 non-members lie above its threshold
(:mod:`lottery_mia.metrics`). ``seed`` seeds the attack sample, the attack models and the
bootstrap, as ``attack.seed`` does in the pipeline; ``attack_settings`` are the
``attack.<name>`` blocks of the pipeline's config.

Outputs (in ``out_dir``)
========================

- ``attacks.csv``: one row per attack: every metric with ``_ci_low``/``_ci_high``,
  ``n_eval_members``, ``n_eval_nonmembers``, ``min_fpr``, ``n_references`` (K, reference
  attacks), the verdicts against chance, the attack's own details;
- ``scores.parquet``: every attack's score of every row (``score_<attack>``; higher = more
  likely a member) with ``sample_id``, ``label``, ``member``, ``fold``, ``correct``;
- ``metrics.json``: the result rows in the pipeline's ``metrics.json`` form;
- ``roc.png``: log-log ROC curves, a panel per kind of attack;
- ``report.html``: one self-contained page (``templates/audit.html.j2``): the inputs, the
  attacks table, the figure;
- ``audit.json``: the inputs, settings and skipped attacks, for scripts.
"""

from __future__ import annotations

import difflib
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .attack_samples import FOLDS, make_attack_sample, same_class_pairs, validate_attack_sample
from .confidences import ConfidenceTable, write_confidences
from .io import atomic_path, atomic_write_bytes, log, write_csv, write_json

__all__ = ["audit", "AuditResult", "AuditInputError", "read_target", "read_references",
           "attack_sample_for", "plan_attacks", "run_audit_attacks", "DEFAULT_MAX_SAMPLE",
           "KIND_ORDER"]

DEFAULT_MAX_SAMPLE = 10_000  # default attack sample: every same-class pair, at most this
MIN_BOOTSTRAP = 200  # as the pipeline's attack.n_bootstrap
KIND_ORDER = ("classifier", "threshold", "reference")  # the pipeline's order of attacks
FEATURES_DOC = "softmax (the paper), sorted, softmax_label or log_softmax"


class AuditInputError(ValueError):
    """An input the audit cannot use; the message names the file, the column and what to
    do."""


# --------------------------------------------------------------------------- reading
def _load(source, what: str):
    """(pyarrow Table, name for messages) of a Parquet path or a DataFrame/pyarrow Table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(source, pd.DataFrame):
        try:
            return pa.Table.from_pandas(source, preserve_index=False), f"the {what} DataFrame"
        except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
            raise AuditInputError(f"the {what} DataFrame cannot be read as a table ({err}); "
                                  "give every column one type (logits: a list of floats "
                                  "per row)") from None
    if isinstance(source, pa.Table):
        return source, f"the {what} table"
    path = Path(source)
    if not path.is_file():
        raise AuditInputError(f"{path}: no such file (the {what} table); give the path of "
                              "a Parquet file")
    try:
        return pq.read_table(path), str(path)
    except Exception as err:  # noqa: BLE001 - every failure becomes one clear message
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise AuditInputError(f"{path}: not a readable Parquet file ({first}); write the "
                              f"{what} table with pandas' DataFrame.to_parquet (see the "
                              "input format in lottery_mia.audit)") from None


def _require_columns(table, src: str, required: dict[str, str]) -> None:
    missing = [c for c in required if c not in table.column_names]
    if missing:
        what = "; ".join(f"{c!r}: {required[c]}" for c in missing)
        raise AuditInputError(f"{src}: missing column(s) {missing} ({what}); it has "
                              f"{table.column_names}. Add them (see the input format in "
                              "lottery_mia.audit)")


def _no_nulls(col, src: str, name: str, fix: str) -> None:
    if col.null_count:
        raise AuditInputError(f"{src}: column {name!r} has {col.null_count} empty (null) "
                              f"value(s); {fix}")


def _integers(table, src: str, name: str, fix: str) -> np.ndarray:
    import pyarrow as pa

    col = table.column(name).combine_chunks()
    if not pa.types.is_integer(col.type):
        raise AuditInputError(f"{src}: column {name!r} is {col.type}, not integers; {fix}")
    _no_nulls(col, src, name, fix)
    return col.to_numpy().astype(np.int64)


def _flags(table, src: str, name: str, meaning: str) -> np.ndarray:
    """A bool column (or integers 0/1)."""
    import pyarrow as pa

    fix = f"write True/False ({meaning})"
    col = table.column(name).combine_chunks()
    _no_nulls(col, src, name, fix)
    if pa.types.is_boolean(col.type):
        return col.to_numpy(zero_copy_only=False).astype(bool)
    if pa.types.is_integer(col.type):
        v = col.to_numpy()
        if np.isin(v, (0, 1)).all():
            return v.astype(bool)
        raise AuditInputError(f"{src}: column {name!r} holds integers other than 0 and 1 "
                              f"(e.g. {int(v[~np.isin(v, (0, 1))][0])}); {fix}")
    raise AuditInputError(f"{src}: column {name!r} is {col.type}, not bool; {fix}")


def _logits(table, src: str, ids: np.ndarray, classes: int | None = None) -> np.ndarray:
    """The N x C float32 logits of a list column, every row of one length, finite."""
    import pyarrow as pa
    import pyarrow.compute as pc

    fix = "write one list of C floats per row (the model's raw outputs on the sample)"
    col = table.column("logits").combine_chunks()
    t = col.type
    if not (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)):
        raise AuditInputError(f"{src}: column 'logits' is {t}, not a list of floats per row; "
                              f"{fix}")
    if not (pa.types.is_floating(t.value_type) or pa.types.is_integer(t.value_type)):
        raise AuditInputError(f"{src}: column 'logits' holds {t.value_type}, not floats; {fix}")
    _no_nulls(col, src, "logits", fix)
    lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False).astype(np.int64)
    if len(lengths) and (lengths != lengths[0]).any():
        values, counts = np.unique(lengths, return_counts=True)
        common = int(values[np.argmax(counts)])
        odd = ids[lengths != common][:5].tolist()
        raise AuditInputError(f"{src}: column 'logits' holds lists of different lengths "
                              f"({dict(zip(values.tolist(), counts.tolist()))} rows by "
                              f"length; e.g. sample_id {odd} differ from {common}); every "
                              "row needs one value per class")
    c = int(lengths[0]) if len(lengths) else 0
    if classes is not None and c != classes:
        raise AuditInputError(f"{src}: column 'logits' has {c} values per row, the target's "
                              f"has {classes}; the references must be models of the same "
                              "classes, scored like the target")
    if classes is None and c < 2:
        raise AuditInputError(f"{src}: column 'logits' has {c} value(s) per row; a "
                              "classifier's logits have one value per class (2 or more)")
    flat = col.flatten()
    if flat.null_count:
        bad = np.flatnonzero(pc.is_null(flat).to_numpy(zero_copy_only=False)
                             .reshape(-1, c).any(1))
        raise AuditInputError(f"{src}: column 'logits' has missing (null or NaN) values "
                              f"inside the lists of {len(bad)} row(s) (e.g. sample_id "
                              f"{ids[bad][:5].tolist()}); the model diverged or the export "
                              "is broken: export finite logits")
    values = flat.to_numpy(zero_copy_only=False).astype(np.float64).reshape(-1, c)
    with np.errstate(over="ignore"):  # too large for float32: refused just below
        logits = values.astype(np.float32)
    bad = ~np.isfinite(logits).all(1)
    if bad.any():
        kind = ("NaN or infinite" if not np.isfinite(values[bad]).all() else
                "too large for float32 (|x| > 3.4e38)")
        raise AuditInputError(f"{src}: column 'logits' has {kind} values in {int(bad.sum())} "
                              f"row(s) (e.g. sample_id {ids[bad][:5].tolist()}); the model "
                              "diverged or the export is broken: export finite logits")
    return logits


def read_target(target, name: str | None = None) -> ConfidenceTable:
    """The target's rows as a :class:`ConfidenceTable` (in the table's order), after every
    check of the input format (:class:`AuditInputError` naming the file and column)."""
    table, src = _load(target, "target")
    _require_columns(table, src, {
        "sample_id": "integer id of each sample", "label": "integer true class",
        "logits": "list of floats per sample (the model's raw outputs)",
        "member": "bool, True for the model's training samples"})
    if table.num_rows == 0:
        raise AuditInputError(f"{src}: the table has no rows")
    ids = _integers(table, src, "sample_id", "write an integer id per sample")
    label = _integers(table, src, "label", "write the class index (0 .. C-1) as an integer")
    member = _flags(table, src, "member", "True: in the model's training set")
    logits = _logits(table, src, ids)
    dup = pd.Series(ids).duplicated()
    if dup.any():
        raise AuditInputError(f"{src}: column 'sample_id' repeats {int(dup.sum())} id(s) "
                              f"(e.g. {ids[dup.to_numpy()][:5].tolist()}); give each sample "
                              "one row with a unique id")
    c = logits.shape[1]
    out = (label < 0) | (label >= c)
    if out.any():
        raise AuditInputError(f"{src}: column 'label' has {int(out.sum())} value(s) outside "
                              f"0..{c - 1} (the logits have {c} classes; e.g. "
                              f"{sorted(set(label[out].tolist()))[:5]}); labels must be "
                              "class indices into the logits")
    if member.all() or not member.any():
        which = "non-members (member False)" if member.all() else "members (member True)"
        raise AuditInputError(f"{src}: column 'member' has no {which}; an audit compares "
                              "samples the model trained on with samples it never saw: add "
                              "held-out samples and training samples")
    meta = {"model": name or (Path(target).stem if isinstance(target, (str, Path))
                              else "target"),
            "method": "audit", "num_classes": c, "source": src}
    return ConfidenceTable.from_logits(ids, label, member, logits, meta)


@dataclass
class References:
    """K reference models' rows, aligned with the target's rows (in its row order)."""

    tables: list[ConfidenceTable]  # member = included
    names: list[str]
    sources: list[str]
    ignored_rows: int = 0  # rows of sample ids the target does not have

    @property
    def included(self) -> np.ndarray:
        """(K, n_target) bool."""
        return np.stack([t.member for t in self.tables])

    def inclusion_frame(self) -> pd.DataFrame:
        """The pipeline's inclusion table (``reference`` = 0..K-1 in :attr:`names` order)."""
        ids = self.tables[0].sample_id
        return pd.DataFrame({"reference": np.repeat(np.arange(len(self.tables)), len(ids)),
                             "sample_id": np.tile(ids, len(self.tables)).astype(np.int64),
                             "included": self.included.ravel()})


def read_references(sources, target: ConfidenceTable) -> References:
    """K reference models from one or more tables (paths or DataFrames, see the module doc),
    aligned with ``target``; :class:`AuditInputError` names the file and column at fault."""
    if isinstance(sources, (str, Path, pd.DataFrame)):
        sources = [sources]
    sources = list(sources)
    if not sources:
        raise AuditInputError("references: no file given")
    frames, logits_parts, origin = [], [], {}
    offset = 0
    for source in sources:
        table, src = _load(source, "references")
        required = {"sample_id": "the target's sample id", "logits": "list of floats per "
                    "row (the reference's raw outputs)", "included": "bool, True when the "
                    "reference trained on the sample"}
        if "reference" not in table.column_names and not isinstance(source, (str, Path)):
            required = {"reference": "which reference model (integer or name)", **required}
        _require_columns(table, src, required)
        if table.num_rows == 0:
            raise AuditInputError(f"{src}: the table has no rows")
        ids = _integers(table, src, "sample_id", "write the target's integer sample ids")
        included = _flags(table, src, "included", "True: the reference trained on it")
        logits = _logits(table, src, ids, classes=target.logits.shape[1])
        if "reference" in table.column_names:
            col = table.column("reference").combine_chunks()
            _no_nulls(col, src, "reference", "name the reference model of every row")
            ref = pd.Series(col.to_pylist()).astype(str).to_numpy()
        else:
            ref = np.full(len(ids), Path(source).stem)
        frame = pd.DataFrame({"reference": ref, "sample_id": ids, "included": included,
                              "row": np.arange(len(ids)) + offset, "src": src})
        if "label" in table.column_names:
            frame["label"] = _integers(table, src, "label", "write the class index as an "
                                       "integer (or leave the column out)")
        for r in pd.unique(ref):
            if origin.setdefault(r, src) != src:
                raise AuditInputError(f"{src}: reference {r!r} also appears in "
                                      f"{origin[r]}; give each reference model its own "
                                      "name (column 'reference')")
        frames.append(frame)
        logits_parts.append(logits)
        offset += len(ids)
    rows = pd.concat(frames, ignore_index=True)
    all_logits = np.concatenate(logits_parts)
    dup = rows.duplicated(["reference", "sample_id"])
    if dup.any():
        first = rows[dup].iloc[0]
        raise AuditInputError(f"{first['src']}: reference {first['reference']!r} has "
                              f"{int(dup.sum())} repeated row(s) (e.g. sample_id "
                              f"{int(first['sample_id'])}); give each (reference, "
                              "sample_id) one row")
    in_target = rows["sample_id"].isin(target.sample_id)
    ignored = int((~in_target).sum())
    rows = rows[in_target]
    names = list(pd.unique(pd.concat(frames)["reference"]))
    tables, srcs = [], []
    for r in names:
        part = rows[rows["reference"] == r].set_index("sample_id")
        src = origin[r]
        missing = target.sample_id[~np.isin(target.sample_id, part.index.to_numpy())]
        if len(missing):
            raise AuditInputError(
                f"{src}: reference {r!r} has no row for {len(missing)} of the target's "
                f"{len(target)} sample ids (e.g. {missing[:5].tolist()}); every reference "
                "needs its logits on every target sample (RMIA and LiRA score each sample "
                "against them): score the reference models on all of the target's samples")
        part = part.loc[target.sample_id]
        if "label" in part and part["label"].notna().any():
            lab = part["label"].to_numpy()
            known = ~pd.isna(part["label"]).to_numpy()
            wrong = known & (lab != target.label)
            if wrong.any():
                raise AuditInputError(f"{src}: column 'label' of reference {r!r} differs "
                                      f"from the target's on {int(wrong.sum())} sample(s) "
                                      f"(e.g. sample_id {part.index[wrong][:5].tolist()}); "
                                      "the sample ids must name the same samples in both")
        inc = part["included"].to_numpy().astype(bool)
        if inc.all() or not inc.any():
            raise AuditInputError(f"{src}: column 'included' of reference {r!r} is "
                                  f"{bool(inc[0])} for every target sample; a reference "
                                  "needs samples it trained on (IN) and samples it did not "
                                  "(OUT) among the target's")
        tables.append(ConfidenceTable.from_logits(
            target.sample_id, target.label, inc, all_logits[part["row"].to_numpy()],
            {"model": str(r), "method": "audit", "reference": str(r),
             "num_classes": int(target.logits.shape[1])}))
        srcs.append(src)
    k = len(tables)
    where = ", ".join(dict.fromkeys(srcs))
    if k < 2:
        raise AuditInputError(f"{where}: {k} reference model ({names}); the reference "
                              "attacks (LiRA, RMIA, shadow) need an even number of at least "
                              "2 (16 or more for per-sample variances): add reference models")
    if k % 2:
        raise AuditInputError(f"{where}: {k} reference models ({names}), an odd number; "
                              "as in the pipeline (references.count), K must be even, so "
                              "that each sample can be IN for exactly half of them: add or "
                              "drop one reference model")
    return References(tables, [str(n) for n in names], srcs, ignored)


def attack_sample_for(target: ConfidenceTable, sample_size: int | None = None, seed: int = 0,
                      test_fraction: float = 0.5, attack_sample=None) -> pd.DataFrame:
    """The attack sample (``sample_id``, ``label``, ``member``, ``fold``): drawn by the
    pipeline's :func:`make_attack_sample` from the target's rows, or read from
    ``attack_sample`` (a path or DataFrame) and checked against the target."""
    if attack_sample is not None:
        return _given_sample(target, attack_sample)
    if not (isinstance(test_fraction, (int, float)) and 0 < test_fraction < 1):
        raise AuditInputError(f"test_fraction {test_fraction!r} must be a number in (0, 1)")
    membership = pd.DataFrame({"sample_id": target.sample_id, "pool": "all",
                               "pool_index": np.arange(len(target), dtype=np.int64),
                               "label": target.label, "member": target.member,
                               "scored": True})
    src = target.metadata.get("source", "target")
    pairs = same_class_pairs(membership)
    if pairs < 2:
        raise AuditInputError(f"{src}: only {pairs} member/non-member pair(s) of the same "
                              "class; the attack sample needs at least 2 (one per fold): "
                              "add members and non-members of the same classes")
    largest = 2 * pairs
    if sample_size is None:
        n = min(largest, DEFAULT_MAX_SAMPLE)
    else:
        n = sample_size
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 4 or n % 2:
            raise AuditInputError(f"sample size {n!r} must be an even integer of at least 4 "
                                  "(n/2 members and n/2 non-members)")
        if n > largest:
            raise AuditInputError(f"sample size {n}: {src} holds only {pairs} member/non-"
                                  "member pairs of the same class (the folds are class-"
                                  f"stratified), so the sample size can be at most {largest}")
    half = int(n) // 2
    n_test = int(round(half * test_fraction))
    if not 0 < n_test < half:
        raise AuditInputError(f"sample size {n} cannot be split at test_fraction "
                              f"{test_fraction}: each fold needs a member/non-member pair; "
                              "raise the sample size or move test_fraction towards 0.5")
    return make_attack_sample(membership, int(n), seed, test_fraction)


def _given_sample(target: ConfidenceTable, source) -> pd.DataFrame:
    table, src = _load(source, "attack-sample")
    _require_columns(table, src, {"sample_id": "the target's sample id",
                                  "fold": "attack_train or attack_test"})
    ids = _integers(table, src, "sample_id", "write the target's integer sample ids")
    fold = pd.Series(table.column("fold").to_pylist(), dtype=object)
    bad = ~fold.isin(FOLDS)
    if bad.any():
        raise AuditInputError(f"{src}: column 'fold' holds {sorted(set(map(str, fold[bad])))[:5]}"
                              f"; every row must be one of {list(FOLDS)}")
    missing = ~np.isin(ids, target.sample_id)
    if missing.any():
        raise AuditInputError(f"{src}: {int(missing.sum())} sample id(s) are not in the "
                              f"target (e.g. {ids[missing][:5].tolist()}); the attack sample "
                              "must be drawn from the target's rows")
    if pd.Series(ids).duplicated().any():
        raise AuditInputError(f"{src}: column 'sample_id' repeats an id; a sample belongs to "
                              "one fold once")
    rows = target.rows(ids)
    for col, mine in (("label", rows.label), ("member", rows.member)):
        if col in table.column_names:
            theirs = (_integers(table, src, col, "write integers") if col == "label" else
                      _flags(table, src, col, "True: a member"))
            if not np.array_equal(theirs, mine):
                raise AuditInputError(f"{src}: column {col!r} disagrees with the target on "
                                      f"{int((theirs != mine).sum())} sample(s); the two "
                                      "tables must describe the same samples")
    sample = pd.DataFrame({"sample_id": ids, "label": rows.label, "member": rows.member,
                           "fold": fold.astype(str).to_numpy()})
    try:
        validate_attack_sample(sample, src)
    except ValueError as err:
        raise AuditInputError(f"{err.args[0].split(';')[0]}; give each fold as many members "
                              "as non-members of every class, or leave the attack sample "
                              "out to draw one") from None
    return sample


def plan_attacks(attacks, n_references: int, attack_settings: dict) -> tuple[list, dict]:
    """The attacks to run (classifier, threshold, then reference attacks, as the pipeline
    orders them) and those left out, with the reason. ``attacks`` None: every one the
    inputs allow; else exactly these (an error for one the inputs do not allow)."""
    from .attacks import ATTACKS
    from .attacks.rmia import DEFAULTS as RMIA_DEFAULTS

    ordered = [n for kind in KIND_ORDER for n, a in ATTACKS.items() if a.kind == kind]
    rmia_auto = {**RMIA_DEFAULTS, **(attack_settings.get("rmia") or {})}["a"] == "auto"

    def why_not(name: str) -> str | None:
        if ATTACKS[name].needs_references and not n_references:
            return "needs reference models (references)"
        if name == "rmia" and rmia_auto and n_references < 4:
            return (f"a: auto tunes a on one reference with the others as its references and "
                    f"needs 4 or more (there are {n_references}); give a number, e.g. "
                    "attack_settings {'rmia': {'a': 0.3}} (0.3 is the paper's CIFAR value)")
        return None

    if attacks is None:
        skipped = {n: r for n in ordered if (r := why_not(n))}
        return [n for n in ordered if n not in skipped], skipped
    names = [a.strip() for item in ([attacks] if isinstance(attacks, str) else attacks)
             for a in str(item).split(",") if a.strip()]
    if not names:
        raise AuditInputError("attacks: none given; leave the option out to run every "
                              "attack the inputs allow")
    for n in names:
        if n not in ATTACKS:
            close = difflib.get_close_matches(n, ordered, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise AuditInputError(f"attacks: no attack is called {n!r}{hint}; choose from "
                                  f"{ordered}")
        if (r := why_not(n)):
            raise AuditInputError(f"attacks: {n!r} {r}")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise AuditInputError(f"attacks: {dup} given more than once")
    return [n for n in ordered if n in names], {}


def _check_settings(attack_settings, names) -> dict:
    from .attacks import ATTACKS, check_attack_config

    if attack_settings is None:
        return {}
    for n, s in attack_settings.items():
        if n not in ATTACKS:
            close = difflib.get_close_matches(str(n), list(ATTACKS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise AuditInputError(f"attack settings: {n!r} is not an attack{hint}; the "
                                  f"settings are keyed by attack name ({sorted(ATTACKS)})")
        if s is not None and not isinstance(s, dict):
            raise AuditInputError(f"attack settings: {n!r} must map setting names to "
                                  f"values, got {s!r}")
    settings = {n: dict(s or {}) for n, s in attack_settings.items()}
    problems = check_attack_config([n for n in names if n in settings], settings)
    if problems:
        raise AuditInputError("attack settings: " + "; ".join(problems))
    return settings


# --------------------------------------------------------------------------- running
@dataclass
class AuditResult:
    """What :func:`audit` wrote: the attacks table, every row's scores, the files."""

    attacks: pd.DataFrame
    scores: pd.DataFrame
    out_dir: Path
    files: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)

    def row(self, attack: str) -> dict:
        """One attack's row of :attr:`attacks` as a dict."""
        return self.attacks.set_index("attack").loc[attack].to_dict()


def audit(target, references=None, *, out_dir, sample_size: int | None = None,
          seed: int = 0, attacks=None, attack_settings: dict | None = None,
          features: str = "softmax", n_bootstrap: int = 1000, test_fraction: float = 0.5,
          attack_sample=None, name: str | None = None, command: str | None = None
          ) -> AuditResult:
    """Audit one model's outputs: read and check ``target`` (and ``references``), run every
    attack the inputs allow (or those of ``attacks``) with the pipeline's fit-attack job,
    and write ``attacks.csv``, ``scores.parquet``, ``metrics.json``, ``roc.png``,
    ``report.html`` and ``audit.json`` into ``out_dir`` (see the module doc).

    ``target``/``references``/``attack_sample``: Parquet paths or DataFrames;
    ``sample_size``: n of the attack sample (default: every same-class member/non-member
    pair, at most 10,000 rows); ``seed``: of the sample, the attack models and the
    bootstrap; ``attack_settings``: ``{attack: {setting: value}}`` as the pipeline's
    ``attack.<name>``; ``name``: the model's name in the report; ``command``: the command
    line shown in the report."""
    from .attacks import FEATURES

    started = time.time()
    if features not in FEATURES:
        raise AuditInputError(f"features {features!r}: choose {FEATURES_DOC}")
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)) or \
            n_bootstrap < MIN_BOOTSTRAP:
        raise AuditInputError(f"n_bootstrap {n_bootstrap!r} must be an integer of at least "
                              f"{MIN_BOOTSTRAP} (resamples behind every interval)")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or \
            not 0 <= seed < 2**32:
        raise AuditInputError(f"seed {seed!r} must be an integer in [0, 2^32)")
    if attack_settings is not None and not isinstance(attack_settings, dict):
        raise AuditInputError("attack settings must be a mapping of attack name -> its "
                              f"settings, got {type(attack_settings).__name__}")
    if attack_sample is not None and sample_size is not None:
        raise AuditInputError("give either a sample size (the audit draws the attack "
                              "sample) or an attack sample, not both")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise AuditInputError(f"{out}: exists and is not a folder; give a folder for the "
                              "results")
    table = read_target(target, name)
    refs = read_references(references, table) if references is not None else None
    k = len(refs.tables) if refs else 0
    names, skipped = plan_attacks(attacks, k, attack_settings or {})
    settings = _check_settings(attack_settings, names)
    sample = attack_sample_for(table, sample_size, seed, test_fraction, attack_sample)
    out.mkdir(parents=True, exist_ok=True)
    log(f"audit of {table.metadata['source']}: {len(table)} rows "
        f"({int(table.member.sum())} members), {k} reference model(s), attack sample "
        f"n={len(sample)}; attacks {names}")
    result, scores = run_audit_attacks(table, refs, sample, names, settings,
                                       features=features, seed=int(seed),
                                       n_bootstrap=int(n_bootstrap))
    write_json(result, out / "metrics.json")
    with atomic_path(out / "scores.parquet") as tmp:
        scores.to_parquet(tmp, index=False)
    frame = attacks_frame(result, n_bootstrap)
    write_csv(frame, out / "attacks.csv")
    inputs = describe_inputs(table, refs, sample, attack_sample, seed, test_fraction,
                             sample_size)
    files = {"attacks": out / "attacks.csv", "scores": out / "scores.parquet",
             "metrics": out / "metrics.json", "roc": out / "roc.png",
             "report": out / "report.html", "audit": out / "audit.json"}
    draw_roc(frame, scores, files["roc"], table.metadata["model"])
    run = {"attacks": names, "skipped": skipped, "settings": settings, "features": features,
           "seed": int(seed), "n_bootstrap": int(n_bootstrap), "command": command,
           "seconds": round(time.time() - started, 1)}
    write_json({"inputs": inputs, **run, "files": {k: str(v) for k, v in files.items()}},
               files["audit"])
    write_report(frame, inputs, run, files, table.metadata["model"])
    log(f"wrote {files['report']} ({run['seconds']}s)")
    return AuditResult(frame, scores, out, files, skipped, inputs)


def run_audit_attacks(table: ConfidenceTable, refs: References | None, sample: pd.DataFrame,
                      names: list[str], settings: dict, *, features: str, seed: int,
                      n_bootstrap: int) -> tuple[dict, pd.DataFrame]:
    """Every attack of ``names`` on the target, as the fit-attack job runs them: the tables
    are written in the pipeline's formats (a temporary folder) and read back by the
    pipeline's :func:`attack_data` and :func:`add_references` (the reference attacks get
    every other row of the target, fold ``outside``, and its non-members as RMIA's
    population), then :func:`evaluate_attacks` fits and evaluates them. Returns the result
    (``metrics.json``: sample size, features, seed and a row per attack) and the scores
    table (``scores.parquet``: a ``score_<attack>`` column per attack)."""
    from .attacks import (ATTACKS, add_references, attack_data, evaluate_attacks,
                          scores_table)

    needs = any(ATTACKS[n].needs_references for n in names)
    with tempfile.TemporaryDirectory(prefix="lottery-mia-audit-") as tmp:
        tmp = Path(tmp)
        write_confidences(table, tmp / "target.parquet")
        sample.to_parquet(tmp / "sample.parquet", index=False)
        data = attack_data(tmp / "target.parquet", tmp / "sample.parquet", features,
                           all_rows=needs)
        if needs:
            paths = []
            for i, t in enumerate(refs.tables):
                paths.append(tmp / f"ref-{i}.parquet")
                write_confidences(t, paths[-1])
            refs.inclusion_frame().to_parquet(tmp / "inclusion.parquet", index=False)
            add_references(data, paths, tmp / "inclusion.parquet", tmp / "target.parquet")
    rows, by_attack = evaluate_attacks(data, names, settings, seed=seed,
                                       n_bootstrap=n_bootstrap)
    scores = scores_table(data, by_attack)
    result = {"model": table.metadata["model"], "n_references": len(refs.tables) if refs
              else 0, "sample_size": int(sample["fold"].isin(FOLDS).sum()),
              "features": features, "seed": seed, "n_bootstrap": n_bootstrap,
              "attacks": rows}
    return result, scores


FIRST_COLUMNS = ["attack", "kind", "n_eval_members", "n_eval_nonmembers", "min_fpr",
                 "n_references"]
HEADLINE_METRICS = ["auc", "balanced_accuracy", "accuracy", "tpr_at_fpr_0.1", "tpr_at_fpr_0.01",
                    "tpr_at_fpr_0.001"]


def attacks_frame(result: dict, n_bootstrap: int) -> pd.DataFrame:
    """The rows of the fit-attack result, one per attack, headline columns first."""
    frame = pd.DataFrame(result["attacks"])
    if "n_references" not in frame:
        frame["n_references"] = np.nan
    first = FIRST_COLUMNS + [f"{m}{x}" for m in HEADLINE_METRICS
                             for x in ("", "_ci_low", "_ci_high")]
    frame = frame[first + [c for c in frame.columns if c not in first]]
    frame["sample_size"] = result["sample_size"]
    frame["features"] = result["features"]
    frame["seed"] = result["seed"]
    frame["n_bootstrap"] = int(n_bootstrap)
    return frame


def describe_inputs(table, refs, sample, attack_sample, seed, test_fraction,
                    sample_size) -> dict:
    """What the audit read, for the report and ``audit.json``."""
    from .metrics import proportion_ci

    def accuracy(mask) -> dict:
        hits = int(table.correct[mask].sum())
        lo, hi = proportion_ci(hits, int(mask.sum()))
        return {"value": hits / int(mask.sum()), "ci_low": lo, "ci_high": hi}

    m = table.member
    inputs = {"target": {"source": table.metadata["source"], "model": table.metadata["model"],
                         "rows": len(table), "members": int(m.sum()),
                         "nonmembers": int((~m).sum()), "classes": int(table.logits.shape[1]),
                         "train_accuracy": accuracy(m), "heldout_accuracy": accuracy(~m)},
              "attack_sample": {
                  "source": (attack_sample if isinstance(attack_sample, (str, Path))
                             else "the attack-sample DataFrame" if attack_sample is not None
                             else "drawn by make_attack_sample"),
                  "size": int(sample["fold"].isin(FOLDS).sum()),
                  "attack_train": int((sample["fold"] == "attack_train").sum()),
                  "attack_test": int((sample["fold"] == "attack_test").sum()),
                  "requested_size": sample_size, "seed": int(seed),
                  "test_fraction": test_fraction,
                  "classes": int(sample["label"].nunique())}}
    inputs["attack_sample"]["source"] = str(inputs["attack_sample"]["source"])
    if refs:
        inc = refs.included
        inputs["references"] = {
            "sources": list(dict.fromkeys(refs.sources)), "count": len(refs.tables),
            "names": refs.names, "in_per_reference": inc.sum(1).tolist(),
            "rows_without_in": int((~inc.any(0)).sum()),
            "rows_without_out": int(inc.all(0).sum()),
            "rows_unjudged": int((~(inc.any(0) & ~inc.all(0))).sum()),
            "rows_judged": int((inc.any(0) & ~inc.all(0)).sum()),
            "ignored_rows": refs.ignored_rows}
    return inputs


# --------------------------------------------------------------------------- figure
KIND_TITLES = {"classifier": "classifier attacks\n(fit on attack-train, on attack-test)",
               "threshold": "threshold attacks\n(cut on attack-train, on attack-test)",
               "reference": "reference-model attacks\n(rows the references can judge)"}
LINESTYLES = ("-", "--", "-.", ":")


def draw_roc(frame: pd.DataFrame, scores: pd.DataFrame, output, model: str):
    """Log-log ROC curves of every attack on the rows it is evaluated on, a panel per kind
    (classifier, threshold, reference), the legend under each panel; the shaded band is
    where fewer than 10 non-members lie above the threshold (TPR not reported there)."""
    from .figures.style import panels, save
    from .metrics import MIN_ABOVE, roc_points
    from .vocabulary import evaluated

    kinds = [k for k in KIND_ORDER if (frame["kind"] == k).any()]
    fig, axes = panels(len(kinds), width=4.4, height=5.4)
    fold = scores["fold"].to_numpy()
    member = scores["member"].to_numpy().astype(bool)
    for ax, kind in zip(axes, kinds):
        rows = frame[frame["kind"] == kind]
        keep = evaluated(fold, kind,  # the reference attacks share their judged rows
                         scores[f"score_{rows['attack'].iat[0]}"].to_numpy())
        n0 = int((~member[keep]).sum())
        lim = 1.0 / max(n0, 1)
        ax.axvspan(lim / 2, min(MIN_ABOVE * lim, 1.0), color="grey", alpha=0.12, lw=0,
                   label=f"TPR not reported (< {MIN_ABOVE} non-members above)")
        for i, r in enumerate(rows.itertuples(index=False)):
            fpr, tpr = roc_points(member[keep], scores[f"score_{r.attack}"].to_numpy()[keep])
            ax.plot(np.maximum(fpr, lim / 2), np.maximum(tpr, lim / 2),
                    LINESTYLES[i % len(LINESTYLES)], color=f"C{i % 10}", linewidth=1.4,
                    label=f"{r.attack} (AUC {r.auc:.3f})")
        ax.plot([lim / 2, 1], [lim / 2, 1], color="grey", linewidth=0.8, label="chance")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lim / 2, 1)
        ax.set_ylim(lim / 2, 1)
        ax.set_xlabel(f"false positive rate ({n0} non-members)")
        ax.set_ylabel("true positive rate")
        ax.set_title(KIND_TITLES[kind], fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1,
                  frameon=False)
    fig.suptitle(f"{model}: ROC curves of every attack (log-log)", fontsize=10)
    save(fig, output)
    return fig


# --------------------------------------------------------------------------- report
NBSP = "\u00a0"


def attacks_view(frame: pd.DataFrame) -> pd.DataFrame:
    """The report's attacks table: best AUC first, every number with its interval."""
    from .report import low_fpr_cell
    from .vocabulary import fmt_ci

    f = frame.sort_values("auc", ascending=False, kind="stable")

    def cells(metric, cell):  # a number and its interval never wrap; "n/a (...)" may
        return [cell(v, lo, hi) if pd.isna(v) else cell(v, lo, hi).replace(" ", NBSP)
                for v, lo, hi in zip(f[metric], f[f"{metric}_ci_low"],
                                     f[f"{metric}_ci_high"])]

    return pd.DataFrame({
        "attack": f["attack"], "kind": f["kind"],
        "AUC [95% CI]": cells("auc", fmt_ci),
        # chance 0.5 on any mix of members and non-members (plain accuracy is not)
        "balanced accuracy [95% CI]": cells("balanced_accuracy", fmt_ci),
        "TPR at 10% FPR": cells("tpr_at_fpr_0.1", low_fpr_cell),
        "TPR at 1% FPR": cells("tpr_at_fpr_0.01", low_fpr_cell),
        "TPR at 0.1% FPR": cells("tpr_at_fpr_0.001", low_fpr_cell),
        "evaluated rows (members + non-members)": [
            f"{int(a)}{NBSP}+{NBSP}{int(b)}" for a, b in zip(f["n_eval_members"],
                                                  f["n_eval_nonmembers"])],
        "min FPR": [f"{v:.2g}" for v in f["min_fpr"]],
        "K": ["" if pd.isna(v) else str(int(v)) for v in f["n_references"]],
        "AUC vs chance": f["verdict_auc"],
    })


def headline(frame: pd.DataFrame) -> list[str]:
    """Sentences for the top of the report: the strongest attack by AUC, and by TPR at the
    lowest FPR measurable on these rows."""
    from .vocabulary import fmt_ci

    best = frame.sort_values("auc", ascending=False, kind="stable").iloc[0]
    out = [f"Strongest attack by AUC: {best['attack']} ({best['kind']}), AUC "
           f"{fmt_ci(best['auc'], best['auc_ci_low'], best['auc_ci_high'])} "
           f"({best['verdict_auc']})."]
    for x in (0.001, 0.01, 0.1):  # the lowest FPR at which a TPR is measurable
        col = f"tpr_at_fpr_{x:g}"
        low = frame[frame[col].notna()]
        if len(low):
            b = low.sort_values(col, ascending=False, kind="stable").iloc[0]
            value = fmt_ci(b[col], b[f"{col}_ci_low"], b[f"{col}_ci_high"])
            rate = f"{x:.1%}".replace(".0%", "%")
            lower = "; lower FPRs are not measurable on these rows" if x > 0.001 else ""
            out.append(f"Highest TPR at {rate} FPR: {b['attack']}, {value} (chance: "
                       f"{x:g}){lower}.")
            break
    else:
        out.append("No TPR at 10% FPR or below is measurable on these rows (fewer than 100 "
                   "evaluated non-members).")
    return out


def write_report(frame, inputs, run, files, model) -> None:
    """``report.html`` from ``templates/audit.html.j2`` (every value autoescaped; the table
    is HTML that pandas escaped; the figure inlined as base64)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    from . import __version__
    from .report import CSS, data_uri, html_table
    from .vocabulary import fmt_ci

    t = inputs["target"]

    def acc(a):
        return fmt_ci(a["value"], a["ci_low"], a["ci_high"])

    context = {
        "css": CSS, "model": model, "version": __version__,
        "generated": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "headline": headline(frame), "attacks_table": html_table(attacks_view(frame)),
        "roc": data_uri(files["roc"]), "inputs": inputs, "run": run,
        "train_accuracy": acc(t["train_accuracy"]),
        "heldout_accuracy": acc(t["heldout_accuracy"]),
        "settings_text": json.dumps(run["settings"], indent=1, sort_keys=True)
        if run["settings"] else "",
        "files": {k: Path(v).name for k, v in files.items()},
    }
    env = Environment(loader=PackageLoader("lottery_mia", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      keep_trailing_newline=True)
    html = env.get_template("audit.html.j2").render(**context)
    atomic_write_bytes(html.encode(), files["report"])
