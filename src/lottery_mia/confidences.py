"""The confidence table: what a model outputs for each member and non-member sample.

One Parquet file per model, one row per scored sample of the membership table. Schema (the
single definition; :func:`validate_confidences` enforces it):

==========  ==================================  ===========================================
column      type                                meaning
==========  ==================================  ===========================================
sample_id   int64                               id from the membership table
label       int64                               true class
member      bool                                True: in the model's training set
logits      fixed_size_list<float32>[classes]   the model's raw outputs, scored in float32
                                                (float16, or bfloat16 as the upper 16 bits
                                                of the float32 in a uint16 list, when
                                                written with ``logits_dtype``)
scaled_     fixed_size_list<float64>[views]     LiRA's statistic per scored view (only when
logit_                                          more than one view was scored,
views                                           ``confidences.augmentations: 2``: the
                                                flipped view's logits are not stored)
scaled_     float64                             the scaled logit averaged over the views,
logit                                           only when a table was given one without its
                                                views (see :func:`write_confidences`)
sensitivity fixed_size_list<float32>[classes]   SAMIA's sensitivity of each class's
                                                probability to input noise (only when
                                                scored with ``confidences.sensitivity``:
                                                :func:`lottery_mia.scoring.predict_views`)
==========  ==================================  ===========================================

File metadata (``lottery_mia`` key, JSON): dataset, arch, sparsity, replicate, num_classes.

Everything else is derived from the logits on read, in float64 (:class:`ConfidenceTable`):
the softmax, the log-probabilities, the loss -log_softmax(logits)[y] (never from a rounded
softmax, which saturates at 0), the predicted class and LiRA's scaled logit
log p_y - log sum_{i!=y} p_i. At 1000 classes a row costs at most ~4,040 bytes (float
logits are written without dictionary, byte-stream-split and zstd-compressed: about 3,400
bytes for normally distributed logits), half of the earlier layout's 8,156, which also
stored the softmax, the loss, the predicted class and the scaled logit. Tables of that layout are still read (their extra columns are
not); its ``scaled_logit`` column is used where it was not derivable (more than one view).
This module is pure numpy/pyarrow: no torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

SCHEMA_FIELDS = ["sample_id", "label", "member", "logits"]  # what every table has
LOGITS_DTYPES = ("float32", "float16", "bfloat16")
_FORMAT_KEY = b"lottery_mia_logits"  # schema metadata: how the logits are stored


def confidence_schema(num_classes: int, metadata: dict | None = None,
                      logits_dtype: str = "float32") -> pa.Schema:
    element = {"float32": pa.float32(), "float16": pa.float16(),
               "bfloat16": pa.uint16()}[logits_dtype]
    schema = pa.schema([
        pa.field("sample_id", pa.int64(), nullable=False),
        pa.field("label", pa.int64(), nullable=False),
        pa.field("member", pa.bool_(), nullable=False),
        pa.field("logits", pa.list_(element, num_classes), nullable=False),
    ])
    meta = {_FORMAT_KEY: logits_dtype.encode()}
    if metadata:
        meta[b"lottery_mia"] = json.dumps(metadata).encode()
    return schema.with_metadata(meta)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log_softmax in float64, exact also for very confident rows: the normaliser is
    log1p of the sum over the non-top classes, so -log p_top stays > 0 instead of rounding
    to 0 (the loss of a member the model fits well is where membership signal lives)."""
    z = np.asarray(logits, dtype=np.float64)
    top = z.argmax(1)
    z = z - z[np.arange(len(z)), top][:, None]
    e = np.exp(z)
    e[np.arange(len(z)), top] = 0.0
    return z - np.log1p(e.sum(1))[:, None]


@dataclass
class ConfidenceTable:
    sample_id: np.ndarray
    label: np.ndarray
    member: np.ndarray
    logits: np.ndarray  # N x classes, float32
    metadata: dict
    # the scaled logit averaged over augmentations, when scoring used more than the original
    # image (None: computed from the logits)
    phi: np.ndarray | None = None
    # the scaled logit of each scored view (N x views), when there are several
    phi_views: np.ndarray | None = None
    # SAMIA's sensitivity (N x classes, float32): the mean absolute change of each class's
    # probability under Gaussian input noise, per unit of noise scale (only when scored
    # with ``confidences.sensitivity``)
    sensitivity: np.ndarray | None = None

    @classmethod
    def from_logits(cls, sample_id, label, member, logits, metadata=None,
                    phi=None, phi_views=None, sensitivity=None) -> "ConfidenceTable":
        """A table from the model's logits; ``phi_views`` (N x views): the scaled logit of
        each scored view (the mean over views becomes ``phi``); ``sensitivity`` (N x
        classes): SAMIA's per-class sensitivity of each row."""
        views = None if phi_views is None else np.asarray(phi_views, dtype=np.float64)
        if views is not None and phi is None:
            phi = views.mean(1)
        return cls(np.asarray(sample_id, dtype=np.int64), np.asarray(label, dtype=np.int64),
                   np.asarray(member, dtype=bool), np.asarray(logits, dtype=np.float32),
                   dict(metadata or {}),
                   None if phi is None else np.asarray(phi, dtype=np.float64), views,
                   None if sensitivity is None
                   else np.ascontiguousarray(sensitivity, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.sample_id)

    @property
    def log_probs(self) -> np.ndarray:
        """log P(y|x), float64, computed stably from the logits."""
        return log_softmax(self.logits)

    @property
    def softmax(self) -> np.ndarray:
        return np.exp(self.log_probs).astype(np.float32)

    @property
    def predicted(self) -> np.ndarray:
        return self.logits.argmax(1).astype(np.int64)

    @property
    def loss(self) -> np.ndarray:
        """Cross-entropy of the true class, -log p_y (float64, from the logits)."""
        return -self.log_probs[np.arange(len(self)), self.label]

    @property
    def correct(self) -> np.ndarray:
        return self.predicted == self.label

    def scaled_logit(self) -> np.ndarray:
        """log p_y - log sum_{i != y} p_i (LiRA's statistic), stably from the logits; the
        stored average over augmentations when the table has one."""
        if self.phi is not None:
            return self.phi
        return scaled_logit_of(self.logits, self.label)

    def scaled_logit_views(self) -> np.ndarray:
        """The scaled logit of each scored view (N x views; one view: the logits')."""
        if self.phi_views is not None:
            return self.phi_views
        return self.scaled_logit()[:, None]

    def take(self, positions) -> "ConfidenceTable":
        """The rows at ``positions`` of this table, in that order."""
        idx = np.asarray(positions, dtype=np.int64)
        return ConfidenceTable(self.sample_id[idx], self.label[idx], self.member[idx],
                               self.logits[idx], self.metadata,
                               None if self.phi is None else self.phi[idx],
                               None if self.phi_views is None else self.phi_views[idx],
                               None if self.sensitivity is None else self.sensitivity[idx])

    def positions(self, sample_ids) -> np.ndarray:
        """The positions of ``sample_ids`` in this table, in that order (a KeyError names
        an id it lacks)."""
        pos = {int(s): i for i, s in enumerate(self.sample_id)}
        try:
            return np.fromiter((pos[int(s)] for s in sample_ids), dtype=np.int64,
                               count=len(sample_ids))
        except KeyError as e:
            raise KeyError(f"sample_id {e.args[0]} is not in this confidence table") from None

    def rows(self, sample_ids: np.ndarray) -> "ConfidenceTable":
        """The rows of ``sample_ids``, in that order (every id must be present)."""
        return self.take(self.positions(sample_ids))


def scaled_logit_of(logits: np.ndarray, label: np.ndarray) -> np.ndarray:
    """log p_y - log sum_{i != y} p_i, stably (log-sum-exp over the other classes)."""
    lp = log_softmax(logits)
    idx = np.arange(len(lp))
    others = lp.copy()
    others[idx, label] = -np.inf
    m = others.max(1)
    log_rest = m + np.log(np.exp(others - m[:, None]).sum(1))
    return lp[idx, label] - log_rest


def validate_confidences(t: ConfidenceTable, source: str = "confidence table") -> None:
    n = len(t.sample_id)
    for name in ("label", "member"):
        if len(getattr(t, name)) != n:
            raise ValueError(f"{source}: column {name} has the wrong length")
    if t.logits.ndim != 2 or t.logits.shape[0] != n:
        raise ValueError(f"{source}: logits must be N x classes")
    if not np.isfinite(t.logits).all():
        raise ValueError(f"{source}: logits hold NaN or infinite values (the model "
                         "diverged?); retrain it")
    if t.sensitivity is not None and (t.sensitivity.shape != t.logits.shape
                                      or not np.isfinite(t.sensitivity).all()):
        raise ValueError(f"{source}: the sensitivity must be finite, one value per row and "
                         "class")
    if n and (t.label.min() < 0 or t.label.max() >= t.logits.shape[1]):
        raise ValueError(f"{source}: a label is outside the {t.logits.shape[1]} classes")
    if len(np.unique(t.sample_id)) != n:
        raise ValueError(f"{source}: duplicate sample_id")


def check_table_identity(t: ConfidenceTable, expected: dict, path) -> None:
    """Refuse a confidence table of another model than the one a job was asked for: its
    metadata (dataset, arch, method, sparsity, replicate) must equal ``expected``."""
    meta = t.metadata
    for key, want in expected.items():
        got = meta.get(key)
        if key == "method" and got is None:  # tables of earlier versions
            got = "dense" if not meta.get("sparsity") else "oneshot"
        same = (got is not None and abs(float(got) - float(want)) < 1e-9) \
            if key == "sparsity" else got == want
        if not same:
            raise ValueError(f"{path} holds the confidences of the model with {key}={got!r}, "
                             f"but this job attacks the one with {key}={want!r} (a file "
                             "copied or moved by hand?); delete it and rerun the workflow "
                             "to score the right model")


def _fixed_list(a: np.ndarray, dtype=np.float32, arrow=None) -> pa.Array:
    flat = pa.array(np.ascontiguousarray(a, dtype=dtype).ravel(), arrow)
    return pa.FixedSizeListArray.from_arrays(flat, a.shape[1])


def to_bfloat16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> the upper 16 bits of the nearest bfloat16 (round half to even)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    return ((u + (0x7FFF + ((u >> 16) & 1))) >> 16).astype(np.uint16)


def from_bfloat16_bits(b: np.ndarray) -> np.ndarray:
    return (np.asarray(b, dtype=np.uint32) << 16).view(np.float32)


def stored_logits(logits: np.ndarray, logits_dtype: str = "float32") -> np.ndarray:
    """The float32 logits a table written with ``logits_dtype`` gives back on read."""
    if logits_dtype == "float16":
        return np.asarray(logits, dtype=np.float32).astype(np.float16).astype(np.float32)
    if logits_dtype == "bfloat16":
        return from_bfloat16_bits(to_bfloat16_bits(logits))
    return np.asarray(logits, dtype=np.float32)


def _logits_array(logits: np.ndarray, logits_dtype: str) -> pa.Array:
    if logits_dtype == "float16":
        with np.errstate(over="ignore"):
            half = np.asarray(logits, dtype=np.float32).astype(np.float16)
        if not np.isfinite(half).all():
            raise ValueError("logits beyond float16's range (|x| > 65504) cannot be stored "
                             "as float16: store them as bfloat16 or float32")
        return _fixed_list(half, np.float16, pa.float16())
    if logits_dtype == "bfloat16":
        bits = to_bfloat16_bits(logits)
        if not np.isfinite(from_bfloat16_bits(bits)).all() and np.isfinite(logits).all():
            raise ValueError("logits beyond bfloat16's range (|x| >= 3.39e38) cannot be "
                             "stored as bfloat16: store them as float32")
        return _fixed_list(bits, np.uint16, pa.uint16())
    return _fixed_list(logits, np.float32, pa.float32())


def write_confidences(t: ConfidenceTable, path: str | Path,
                      logits_dtype: str = "float32") -> None:
    """Write ``t``: its ids, labels, membership and logits, and what the logits cannot give
    back: the per-view scaled logits of a table scored on several views (``phi_views``),
    and an average scaled logit given without its views (``phi`` alone; a ``phi`` equal to
    the mean of the stored views is not written again), and SAMIA's sensitivity when the
    table has one (float32, whatever ``logits_dtype``). ``logits_dtype`` float16 or
    bfloat16 halves the logits' size (off by default; the scaled logits stay float64)."""
    if logits_dtype not in LOGITS_DTYPES:
        raise ValueError(f"logits_dtype {logits_dtype!r} is not one of {LOGITS_DTYPES}")
    validate_confidences(t)
    c = t.logits.shape[1]
    table = pa.Table.from_arrays([
        pa.array(t.sample_id.astype(np.int64)), pa.array(t.label.astype(np.int64)),
        pa.array(t.member.astype(bool)), _logits_array(t.logits, logits_dtype),
    ], schema=confidence_schema(c, t.metadata, logits_dtype))
    views = t.phi_views if t.phi_views is not None and t.phi_views.shape[1] > 1 else None
    if views is not None:
        table = table.append_column(
            pa.field("scaled_logit_views", pa.list_(pa.float64(), views.shape[1]),
                     nullable=False), _fixed_list(views, np.float64, pa.float64()))
    if t.phi is not None and (views is None or not np.array_equal(t.phi, views.mean(1))):
        table = table.append_column(pa.field("scaled_logit", pa.float64(), nullable=False),
                                    pa.array(np.asarray(t.phi, dtype=np.float64)))
    if t.sensitivity is not None:
        table = table.append_column(pa.field("sensitivity", pa.list_(pa.float32(), c),
                                             nullable=False), _fixed_list(t.sensitivity))
    from .io import atomic_path

    # float columns: no dictionary (random floats only grow it: +300 bytes a row at 1000
    # classes), their bytes split by significance and zstd (the exponent bytes compress)
    floats = [f"{f.name}.list.element" if pa.types.is_fixed_size_list(f.type) else f.name
              for f in table.schema
              if (f.type.value_type if pa.types.is_fixed_size_list(f.type) else f.type)
              in (pa.float32(), pa.float64())]
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", use_dictionary=False,
                       use_byte_stream_split=floats)


def _matrix(table: pa.Table, name: str, path, dtype=np.float32,
            bfloat16_bits: bool = False) -> np.ndarray:
    """An N x classes matrix from a list column: fixed-size (as written here), or
    variable-size lists of one common length (as other writers store them)."""
    col = table.column(name).combine_chunks()
    if pa.types.is_fixed_size_list(col.type):
        c = col.type.list_size
    elif pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        lengths = np.unique(pc.list_value_length(col).to_numpy(zero_copy_only=False))
        if col.null_count or len(lengths) > 1:
            raise ValueError(f"{path}: column {name!r} holds lists of different lengths "
                             f"({sorted(int(n) for n in lengths[:5] if n == n)}) or empty "
                             "rows; every row needs one value per class. Delete it and rerun "
                             "the workflow to score the model again")
        c = int(lengths[0]) if len(lengths) else 0
    else:
        raise ValueError(f"{path}: column {name!r} is {col.type}, not a list of one value per "
                         "class; delete it and rerun the workflow to score the model again")
    values = col.flatten().to_numpy(zero_copy_only=False)
    if bfloat16_bits:  # written with logits_dtype bfloat16 (the schema metadata says so)
        values = from_bfloat16_bits(values)
    return values.astype(dtype, copy=False).reshape(-1, c)


def read_confidences(path: str | Path, sensitivity: bool = True) -> ConfidenceTable:
    """A confidence table (this layout, or the earlier one with stored softmax, loss,
    predicted class and scaled logit: those columns are not read, the logits give them);
    ``sensitivity`` False leaves SAMIA's n x C sensitivity column unread."""
    try:
        names = pq.read_schema(path).names
        if not sensitivity:
            names = [f for f in names if f != "sensitivity"]
        wanted = [f for f in SCHEMA_FIELDS + ["scaled_logit", "scaled_logit_views",
                                              "sensitivity"] if f in names]
        table = pq.read_table(path, columns=wanted)
    except Exception as err:
        raise ValueError(f"{path} is not a readable confidence table ({err}); delete it and "
                         "rerun the workflow to score the model again") from None
    missing = [f for f in SCHEMA_FIELDS if f not in table.column_names]
    if missing:
        raise ValueError(f"{path} is not a confidence table of this version: missing columns "
                         f"{missing}; delete it and rerun the workflow to score the model again")
    meta = json.loads((table.schema.metadata or {}).get(b"lottery_mia", b"{}"))
    # the earlier layout stored the scaled logit on every table, derivable or not: it is the
    # table's own only where more than one view was scored
    earlier = "softmax" in names
    own_phi = "scaled_logit" in names and (not earlier or meta.get("augmentations", 1) > 1)
    views = (_matrix(table, "scaled_logit_views", path, np.float64)
             if "scaled_logit_views" in names else None)
    phi = table.column("scaled_logit").to_numpy() if own_phi else None
    if phi is None and views is not None:
        phi = views.mean(1)
    t = ConfidenceTable(
        sample_id=table.column("sample_id").to_numpy(),
        label=table.column("label").to_numpy(),
        member=table.column("member").to_numpy(zero_copy_only=False).astype(bool),
        logits=_matrix(table, "logits", path, bfloat16_bits=(
            (table.schema.metadata or {}).get(_FORMAT_KEY) == b"bfloat16")),
        metadata=meta, phi=phi, phi_views=views,
        sensitivity=(_matrix(table, "sensitivity", path) if "sensitivity" in names else None),
    )
    validate_confidences(t, str(path))
    return t
