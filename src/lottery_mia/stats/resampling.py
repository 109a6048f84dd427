"""Resampling the attack rows: bootstrap intervals of every metric of
:mod:`lottery_mia.stats.metrics`, for one model, several replicate models on the same rows, a
paired difference, and a slice of the rows.

Intervals: :func:`bootstrap_metrics` resamples the evaluated rows with replacement, members
and non-members separately (so both counts stay fixed), >= 1000 seeded resamples, and
returns percentile 95% intervals. With ``strata`` (the rows' class labels,
:func:`design_strata`) it resamples within class x membership cells, every cell's count
fixed, as the attack samples are drawn (class-stratified member/non-member pairs,
:mod:`lottery_mia.attack_samples`): resampling members and non-members alone lets each
resample's class mix vary though the design fixes it, and with class effects on the scores
the AUC interval is then too wide (1.44 x, covering 99% instead of 95%, in the simulation of
``tests/test_metrics.py``). A TPR at a low FPR is recomputed in each resample with the same
rule (nan where fewer than 10 drawn non-members lie strictly above its cut; a non-member
drawn several times at the cut is tied there too); its interval is the percentiles of the
resamples with a value, and nan where the point value is nan or fewer than half the
resamples (:data:`MIN_DEFINED`) have one. Several score vectors on the same rows
(replicate models) are resampled with the same indices and their metric averaged, and
:func:`paired_difference` compares two models on the same resampled rows. Each resample
costs O(n) after one sort per score vector (a weighted rank statistic of the draw counts),
and resamples are taken in chunks, so memory stays O(n) whatever the number of resamples
(:func:`bootstrap_samples`). :func:`slice_metrics` resamples a slice's own rows the same
way (``strata`` too) and reports a slice with fewer than :data:`MIN_SLICE` members or
non-members as not estimable.
"""

from __future__ import annotations

import math

import numpy as np

from .metrics import (LEVEL, LOW_FPRS, MIN_ABOVE, N_BOOTSTRAP, POINT_METRICS, _as_xy,
                      _rank_auc, attack_metrics)


# --------------------------------------------------------------------------- bootstrap
# The resampled metrics come from one sort per score vector, never from a sort per resample:
# with the non-member scores sorted once, a resample is a vector of draw counts over them,
# and every metric is a weighted rank statistic of those counts (the Mann-Whitney AUC, the
# order statistic of a low-FPR rate, counts above a threshold). Numerators are integer or
# half-integer counts, so each resampled value equals bit for bit what sorting the resampled
# scores gives (``tests/test_metrics.py`` keeps the earlier sort-per-resample code to check).
# Resamples are processed in chunks (:data:`BOOT_CHUNK_BYTES`) so memory does not grow with
# the number of resamples; the random stream, and so every result, does not depend on it.
BOOT_CHUNK_BYTES = 64 * 2**20  # working memory of one chunk of resamples (about)
_BYTES_PER_DRAW = 48  # int64 draws, positions and cumulated counts held per drawn row


def design_strata(labels) -> np.ndarray:
    """The bootstrap strata of the attack-sample design: one integer code (0, 1, ...) per
    row for its class ``labels`` (any sortable values), to pass as ``strata=``.

    Attack samples are class-stratified member/non-member pairs
    (:mod:`lottery_mia.attack_samples`): each class holds a fixed number of members and as
    many non-members, so a resample keeps those counts (it draws members of class c from
    the members of class c, non-members of class c from its non-members)."""
    values = np.asarray(labels)
    if values.ndim != 1:
        raise ValueError("strata: one value per row (1-D)")
    return np.unique(values, return_inverse=True)[1].astype(np.int64).reshape(-1)


def _strata_of(strata, y: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``strata`` (one per row, or None) split into the members' and the non-members'."""
    if strata is None:
        return None, None
    codes = design_strata(strata)
    if codes.shape != y.shape:
        raise ValueError(f"strata: {codes.size} values for {y.size} rows")
    return codes[y], codes[~y]


class _Plan:
    """Where each draw of one side comes from: column j of a resample redraws row j's
    place from the rows of its own stratum (``order[start[j]:start[j] + size[j]]``)."""

    def __init__(self, codes: np.ndarray):
        self.order = np.argsort(codes, kind="stable")  # rows grouped by stratum
        counts = np.bincount(codes)
        first = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.start, self.size = first[codes], counts[codes]


def _resample_indices(n: int, n_boot: int, rng: np.random.Generator,
                      plan: _Plan | None = None) -> np.ndarray:
    if plan is None:
        return rng.integers(0, n, size=(n_boot, n))
    local = rng.integers(0, plan.size, size=(n_boot, n))  # one bound per column
    local += plan.start
    return plan.order[local]


def _chunk_of(n_rows: int, n_boot: int, chunk: int | None) -> int:
    """Resamples per chunk: ``chunk``, or as many as :data:`BOOT_CHUNK_BYTES` holds."""
    if chunk is None:
        chunk = BOOT_CHUNK_BYTES // (_BYTES_PER_DRAW * max(n_rows, 1))
    return int(max(1, min(int(chunk), n_boot)))


def _stratified_draws(n1: int, n0: int, n_boot: int, seed: int, chunk: int,
                      strata1: np.ndarray | None = None, strata0: np.ndarray | None = None):
    """Chunks ``(d1, d0)`` of the stratified bootstrap's draws: ``d1`` (b, n1) indices into
    the members, ``d0`` (b, n0) into the non-members.

    The stream is one ``numpy.random.default_rng(seed)`` drawing ``integers(0, n1)`` for all
    ``n_boot`` x ``n1`` member draws (resample by resample), then ``integers(0, n0)`` for all
    ``n_boot`` x ``n0`` non-member draws. A second generator, advanced past the member draws,
    yields the non-member draws chunk by chunk, so chunking never changes a draw.

    ``strata1`` / ``strata0`` (integer codes, one per member / non-member; see
    :func:`design_strata`) resample within strata: column j of ``d1`` is drawn from the
    members of member j's stratum (``integers(0, size of that stratum)``, the same stream
    and order), so every resample holds each stratum's members and non-members in their
    original counts. One stratum gives exactly the draws without strata."""
    plan1 = None if strata1 is None else _Plan(np.asarray(strata1))
    plan0 = None if strata0 is None else _Plan(np.asarray(strata0))
    rng1 = np.random.default_rng(seed)
    rng0 = np.random.default_rng(seed)
    for start in range(0, n_boot, chunk):  # skip the member draws on the second stream
        _resample_indices(n1, min(chunk, n_boot - start), rng0, plan1)
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        yield (_resample_indices(n1, b, rng1, plan1), _resample_indices(n0, b, rng0, plan0))


class _Ranked:
    """One score vector split into members ``s1`` and non-members ``s0``, sorted once.

    ``m1`` / ``m0`` (bool, optional) keep only some rows of each side (a slice of one
    replicate inside rows shared with others); left out rows weigh 0 in every resample."""

    def __init__(self, s1: np.ndarray, s0: np.ndarray, threshold: float,
                 m1: np.ndarray | None = None, m0: np.ndarray | None = None):
        order = np.argsort(s0, kind="stable")
        self.s0_sorted = s0[order]
        self.pos0 = np.empty(len(s0), dtype=np.intp)  # sorted position of each non-member
        self.pos0[order] = np.arange(len(s0))
        # non-members strictly below / at most each member's score (ties count one half)
        # first sorted position above each one's value (the end of its block of ties)
        self.tie_end = np.searchsorted(self.s0_sorted, self.s0_sorted, "right")
        self.lt = np.searchsorted(self.s0_sorted, s1, "left")
        self.le = np.searchsorted(self.s0_sorted, s1, "right")
        self.ge1 = s1 >= threshold
        self.thr_pos = int(np.searchsorted(self.s0_sorted, threshold, "left"))
        self.m1 = None if m1 is None else np.asarray(m1, dtype=np.int64)
        self.m0 = None if m0 is None else np.asarray(m0, dtype=np.int64)[order]
        self.n1, self.n0 = len(s1), len(s0)

    def _cumulated(self, d0: np.ndarray) -> np.ndarray:
        """(b, n0 + 1): drawn non-members at sorted positions below p, for every p."""
        b = d0.shape[0]
        c = np.zeros((b, self.n0 + 1), dtype=np.int64)
        pos = self.pos0[d0]
        for i in range(b):
            c[i, 1:] = np.bincount(pos[i], minlength=self.n0)
        if self.m0 is not None:
            c[:, 1:] *= self.m0
        return np.cumsum(c, axis=1, out=c)

    def metrics(self, d1: np.ndarray, d0: np.ndarray, low_fpr: bool = True,
                only: tuple | None = None) -> dict[str, np.ndarray]:
        """Every point metric of each resample (rows of the draws ``d1``, ``d0``)."""
        c0 = self._cumulated(d0)
        lt, le = self.lt[d1], self.le[d1]
        w1 = None if self.m1 is None else self.m1[d1]
        twice_beaten = np.take_along_axis(c0, lt, 1) + np.take_along_axis(c0, le, 1)
        if w1 is None:
            n1 = np.full(d1.shape[0], d1.shape[1], dtype=np.int64)
            tp = self.ge1[d1].sum(1)
            u = 0.5 * twice_beaten.sum(1)
        else:
            n1 = w1.sum(1)
            tp = (self.ge1[d1] * w1).sum(1)
            u = 0.5 * (twice_beaten * w1).sum(1)
        n0 = c0[:, -1]
        fp = n0 - c0[:, self.thr_pos]
        with np.errstate(invalid="ignore", divide="ignore"):
            auc = u / (n1 * n0)
            accuracy = (tp + (n0 - fp)) / (n1 + n0)
            if only == ("accuracy", "auc"):
                return {"accuracy": accuracy, "auc": auc}
            tpr, fpr = tp / n1, fp / n0
            precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
        out = {"accuracy": accuracy, "precision": precision, "recall": tpr,
               "balanced_accuracy": (tpr + 1.0 - fpr) / 2.0, "advantage": tpr - fpr,
               "auc": auc}
        if low_fpr:
            for x in LOW_FPRS:
                out[f"tpr_at_fpr_{x:g}"] = self._tpr_at_fpr(c0, lt, x)
        return out

    def _tpr_at_fpr(self, c0: np.ndarray, lt: np.ndarray, x: float) -> np.ndarray:
        """:func:`_tpr_at_fpr` of each resample: the (k+1)-th highest drawn non-member is
        the one at ascending rank n0 - 1 - k, at the first sorted position p whose cumulated
        count exceeds that rank; a member beats it when more non-members lie below it. The
        drawn non-members strictly above it are those from the end of p's block of tied
        scores on: nan where fewer than :data:`MIN_ABOVE` (a non-member drawn several times
        at the cut is a tie there too)."""
        b, n0 = c0.shape[0], self.n0
        k = int(math.floor(x * n0 + 1e-9))
        if k < MIN_ABOVE:
            return np.full(b, np.nan)
        if k >= n0:
            return np.ones(b)
        p = (c0[:, 1:] <= n0 - 1 - k).sum(1)
        above = c0[:, -1] - c0[np.arange(b), self.tie_end[p]]
        tpr = (lt > p[:, None]).sum(1) / lt.shape[1]
        return np.where(above >= MIN_ABOVE, tpr, np.nan)


def _percentile(v: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(v, [a, 1.0 - a])
    return float(lo), float(hi)


MIN_DEFINED = 0.5  # share of resamples that must give a value for an interval


def _interval(v: np.ndarray, point: float, level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of a bootstrap distribution ``v`` of a metric whose point value is
    ``point``: nan when the point is nan (the metric is not reported) or when fewer than
    :data:`MIN_DEFINED` of the resamples give a value (a TPR at a low FPR whose cut has
    fewer than :data:`MIN_ABOVE` non-members strictly above it in most resamples: the
    remaining ones are a biased selection); else the percentiles of the defined resamples."""
    v = np.asarray(v, dtype=np.float64)
    if not np.isfinite(point) or v.size == 0 or np.isfinite(v).mean() < MIN_DEFINED:
        return float("nan"), float("nan")
    return _percentile(v, level)


def _stack(scores, thresholds) -> tuple[np.ndarray, np.ndarray]:
    s = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    t = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (s.shape[0],)).copy()
    return s, t


def bootstrap_samples(is_member, scores, thresholds, *, n_boot: int = N_BOOTSTRAP,
                      seed: int = 0, chunk: int | None = None,
                      strata=None) -> dict[str, np.ndarray]:
    """Bootstrap distribution of every point metric, averaged over replicate score rows.

    ``scores``: (n_rows,) or (R, n_rows) scores of R models on the same rows;
    ``thresholds``: a scalar or one per model. Returns metric -> (n_boot,) values.

    Resample b draws n1 members with replacement from the n1 members and n0 non-members
    from the n0 non-members (:func:`_stratified_draws`); every replicate is evaluated on
    the same drawn rows. ``strata`` (one value per row, e.g. the class label; see
    :func:`design_strata`) resamples within stratum x membership cells instead: for each
    stratum c, its members from the members of c and its non-members from the non-members
    of c, every cell's count kept, as the class-stratified attack samples were drawn;
    ``None`` resamples members and non-members as two cells. ``chunk`` resamples are held
    at a time (default: what :data:`BOOT_CHUNK_BYTES` allows), so memory is
    O(chunk x n_rows) whatever ``n_boot``; the results do not depend on ``chunk``.
    """
    y = np.asarray(is_member).astype(bool)
    s, t = _stack(scores, thresholds)
    _as_xy(y, s[0])
    strata1, strata0 = _strata_of(strata, y)
    n1, n0 = int(y.sum()), int((~y).sum())
    ranked = [_Ranked(s[r][y], s[r][~y], t[r]) for r in range(s.shape[0])]
    parts: list[dict[str, np.ndarray]] = []
    for d1, d0 in _stratified_draws(n1, n0, n_boot, seed, _chunk_of(n1 + n0, n_boot, chunk),
                                    strata1, strata0):
        acc: dict[str, np.ndarray] = {}
        for rk in ranked:
            for k, v in rk.metrics(d1, d0).items():
                acc[k] = acc.get(k, 0.0) + v / s.shape[0]
        parts.append(acc)
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def bootstrap_metrics(is_member, scores, thresholds, *, n_boot: int = N_BOOTSTRAP,
                      seed: int = 0, strata=None) -> dict:
    """Point metrics (averaged over replicate rows) with 95% percentile bootstrap intervals.

    Returns ``{metric: value, metric_ci_low: ..., metric_ci_high: ...}`` for every metric of
    :data:`POINT_METRICS`, plus ``max_advantage_test``, counts and ``n_bootstrap``.
    ``strata``: resample within class x membership cells (:func:`bootstrap_samples`); pass
    the rows' class labels for an attack sample's rows. An interval is nan where its point
    value is (a TPR at an unmeasurable FPR) or most resamples give none (:func:`_interval`).
    """
    y = np.asarray(is_member).astype(bool)
    s, t = _stack(scores, thresholds)
    points = [attack_metrics(y, s[r], t[r]) for r in range(s.shape[0])]
    out: dict = {}
    boot = bootstrap_samples(y, s, t, n_boot=n_boot, seed=seed, strata=strata)
    for k in POINT_METRICS:
        out[k] = float(np.mean([p[k] for p in points]))
        out[f"{k}_ci_low"], out[f"{k}_ci_high"] = _interval(boot[k], out[k])
    out["max_advantage_test"] = float(np.mean([p["max_advantage_test"] for p in points]))
    for k in ("n_members", "n_nonmembers", "n_eval_members", "n_eval_nonmembers",
              "min_measurable_fpr", "min_fpr"):
        out[k] = points[0][k]
    out["n_bootstrap"] = int(n_boot)
    return out


def paired_difference(is_member, scores_a, thresholds_a, scores_b, thresholds_b, *,
                      metrics=("accuracy", "auc"), n_boot: int = N_BOOTSTRAP,
                      seed: int = 0, strata=None) -> dict:
    """b - a on the same rows, with a paired-bootstrap 95% interval (same resampled rows for
    both; each side averaged over its replicate score rows; ``strata`` as in
    :func:`bootstrap_samples`)."""
    y = np.asarray(is_member).astype(bool)
    ba = bootstrap_samples(y, scores_a, thresholds_a, n_boot=n_boot, seed=seed, strata=strata)
    bb = bootstrap_samples(y, scores_b, thresholds_b, n_boot=n_boot, seed=seed, strata=strata)
    sa, ta = _stack(scores_a, thresholds_a)
    sb, tb = _stack(scores_b, thresholds_b)
    out = {}
    for k in metrics:
        pa = np.mean([attack_metrics(y, sa[r], ta[r])[k] for r in range(sa.shape[0])])
        pb = np.mean([attack_metrics(y, sb[r], tb[r])[k] for r in range(sb.shape[0])])
        lo, hi = _interval(bb[k] - ba[k], float(pb - pa))
        out[k] = {"a": float(pa), "b": float(pb), "difference": float(pb - pa),
                  "ci_low": lo, "ci_high": hi, "excludes_zero": bool(lo > 0 or hi < 0)}
    return out


# --------------------------------------------------------------------------- slices
# Members and non-members a slice needs for an interval: in known-truth simulations (normal
# scores, AUC 0.5 and 0.71, 300 slices each, ``tests/test_metrics.py``) the percentile
# bootstrap of a slice's AUC covers 93% with 10 of each, 88-90% with 5 and 75-78% with 3.
MIN_SLICE = 10


def _slice_note(n1: int, n0: int) -> str:
    """Why a slice of ``n1`` members and ``n0`` non-members has no interval ('' if it has)."""
    if n1 >= MIN_SLICE and n0 >= MIN_SLICE:
        return ""
    what = (f"{n1} member{'s' * (n1 != 1)} and {n0} non-member{'s' * (n0 != 1)}")
    if n1 == 0 or n0 == 0:
        return f"{what}: no AUC, no interval"
    return f"{what}: fewer than {MIN_SLICE} of each, no interval"


def slice_metrics(is_member, scores, thresholds, masks, *, n_boot: int = N_BOOTSTRAP,
                  seed: int = 0, chunk: int | None = None, strata=None) -> dict:
    """Accuracy and AUC of an attack on a slice of the evaluated rows, averaged over
    replicate models, with 95% bootstrap intervals.

    ``masks`` (R, n) marks each replicate's slice (a class, or the rows its own model
    classifies correctly). Point values: each replicate's accuracy and AUC on its slice's
    rows, averaged. Intervals: the slice's own rows are resampled, the rows in at least one
    replicate's slice (for a class: exactly the class's rows): its members with replacement
    from its members and its non-members from its non-members, counts kept, with the seeded
    stream of :func:`bootstrap_samples` (``seed``); each replicate's metric is computed on
    the resampled rows that lie in its own slice (all of them when the replicates share the
    slice) and averaged over replicates; percentile 95% intervals. So for a shared slice the
    interval is exactly :func:`bootstrap_metrics`' on the slice's rows (with the same
    ``strata``). ``strata`` (one per row of ``is_member``, e.g. the class label) resamples
    the slice's rows within class x membership cells (:func:`bootstrap_samples`): for a
    prediction slice (correct / incorrect rows), which mixes classes, each class's count
    of members and of non-members among the slice's rows stays fixed.

    A slice is ``estimable`` when every replicate's slice holds at least :data:`MIN_SLICE`
    members and as many non-members; otherwise it gets no interval (nan) and ``note`` says
    why (its point values are still given; the AUC is nan without members or
    non-members). Cost: one sort per replicate and O(n_boot x slice rows), in chunks.
    """
    y = np.asarray(is_member).astype(bool)
    s, t = _stack(scores, thresholds)
    masks = np.atleast_2d(np.asarray(masks, dtype=bool))
    if masks.shape != s.shape:
        masks = np.broadcast_to(masks, s.shape)
    rows = np.flatnonzero(masks.any(0))
    if strata is not None:
        strata = design_strata(strata)
        if strata.shape != y.shape:
            raise ValueError(f"strata: {strata.size} values for {y.size} rows")
        strata = strata[rows]
    y, s, masks = y[rows], s[:, rows], masks[:, rows]
    n1s, n0s = (masks & y).sum(1), (masks & ~y).sum(1)
    point_acc, point_auc = [], []
    for r in range(s.shape[0]):
        ys, ss = y[masks[r]], s[r][masks[r]]
        point_acc.append(float(((ss >= t[r]) == ys).mean()) if ys.size else np.nan)
        if ys.all() or not ys.any():
            point_auc.append(np.nan)
            continue
        point_auc.append(float(_rank_auc(ss[ys], ss[~ys])))
    note = _slice_note(int(n1s.min()), int(n0s.min()))
    out = {"n_rows": int(masks.sum(1).mean()), "n_members": int(n1s.mean()),
           "n_nonmembers": int(n0s.mean()), "accuracy": float(np.mean(point_acc)),
           "auc": float(np.mean(point_auc)), "estimable": not note, "note": note,
           "accuracy_ci_low": np.nan, "accuracy_ci_high": np.nan,
           "auc_ci_low": np.nan, "auc_ci_high": np.nan}
    if note:
        return out
    shared = bool((masks == masks[0]).all())
    ranked = [_Ranked(s[r][y], s[r][~y], t[r],
                      None if shared else masks[r][y], None if shared else masks[r][~y])
              for r in range(s.shape[0])]
    n1, n0 = int(y.sum()), int((~y).sum())
    strata1, strata0 = _strata_of(strata, y)
    boot_acc, boot_auc = [], []
    for d1, d0 in _stratified_draws(n1, n0, n_boot, seed, _chunk_of(n1 + n0, n_boot, chunk),
                                    strata1, strata0):
        a = u = 0.0
        for rk in ranked:
            m = rk.metrics(d1, d0, only=("accuracy", "auc"))
            a = a + m["accuracy"] / s.shape[0]
            u = u + m["auc"] / s.shape[0]
        boot_acc.append(a)
        boot_auc.append(u)
    out["accuracy_ci_low"], out["accuracy_ci_high"] = _percentile(np.concatenate(boot_acc))
    out["auc_ci_low"], out["auc_ci_high"] = _percentile(np.concatenate(boot_auc))
    return out
