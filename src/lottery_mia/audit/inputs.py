"""The audit's inputs: the target's and the references' tables read and checked, the
attack sample, the attacks the inputs allow and their settings."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..attack_samples import FOLDS, make_attack_sample, same_class_pairs, validate_attack_sample
from ..confidences import ConfidenceTable


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
    values = col.to_numpy()
    if values.dtype.kind == "u" and len(values) and int(values.max()) > np.iinfo(np.int64).max:
        raise AuditInputError(f"{src}: column {name!r} holds {int(values.max())}, beyond a "
                              "signed 64-bit integer (2^63 - 1); number the rows with "
                              "smaller ids")
    return values.astype(np.int64)


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
    from ..attacks import ATTACKS

    # the audit attacks one model's table: the pair attacks (a pruned network and its
    # dense parent), the quantile attack (the rows' inputs) and SAMIA (the rows' sensitivity
    # to input noise) are not among its attacks, and asking for one is an error saying why
    ordered = [n for kind in KIND_ORDER for n, a in ATTACKS.items() if a.kind == kind
               and not a.needs_parent and not a.needs_inputs and not a.needs_sensitivity]

    def why_not(name: str) -> str | None:  # each attack's own constraints
        return ATTACKS[name].cannot_run(attack_settings.get(name), n_references,
                                        with_parent=False, with_inputs=False,
                                        with_sensitivity=False)

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
    from ..attacks import ATTACKS, check_attack_config

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
