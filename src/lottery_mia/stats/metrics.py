"""Metric definitions for membership-inference attacks (the single definition): point
values of every metric, thresholds, and the small intervals of one number (a mean over
seeds, a proportion, a correlation).

Conventions: members are the positive class (label 1). Scores are continuous "how likely a
member" values; ROC-based metrics are computed from scores, never from hard 0/1 decisions.
Hard decisions (accuracy, precision, recall) use ``score >= threshold``, where the threshold
was chosen on attack-train data (0.5 on a classifier's probability, or the best cut of a
threshold attack on attack-train scores).

- accuracy, precision, recall (members positive), balanced accuracy;
- advantage: TPR - FPR at that threshold (= 2 * balanced accuracy - 1), Yeom et al.'s
  membership advantage of the attack as fitted; ``max_advantage_test`` is the maximum of
  TPR - FPR over all thresholds on the evaluated rows themselves (an optimistic, test-fold
  optimum: it is positive even without any signal, so it is never the headline number);
- auc: area under the ROC curve (ties count one half);
- tpr_at_fpr_X (X = 10%, 1%, 0.1%): the TPR at the largest FPR <= X on the full ROC curve
  (every threshold kept), i.e. the share of members scoring strictly above the cut, the
  (k+1)-th highest non-member score, k = floor(X * n_nonmembers). It is reported only where
  at least ``MIN_ABOVE`` = 10 non-members score strictly above the cut, else it is nan
  ("n/a"): below that the order statistic is biased (the null mean of TPR at 1% FPR with
  125 non-members is 0.016) and its bootstrap interval under-covers (60-91%); at 10 or more
  the percentile bootstrap covers 92-97% in known-truth simulations
  (``tests/test_metrics.py``). Without ties that is k >= 10 (:func:`tpr_measurable`, the
  count-only precondition, X * n_nonmembers >= 10); non-members tied at the cut are not
  above it, so with ties fewer may be (3 non-members at 0.9 and 197 at 0.5: the cut of 10%
  FPR is 0.5 with 3 above, n/a). ``n_eval_members``, ``n_eval_nonmembers`` and ``min_fpr``
  (1 / non-members) say what an attack was evaluated on.

Intervals are in :mod:`lottery_mia.stats.resampling` (the bootstrap over rows) and
:mod:`lottery_mia.stats.inference` (differences over seeds and rows).
"""

from __future__ import annotations

import math

import numpy as np

LOW_FPRS = (0.1, 0.01, 0.001)
MIN_ABOVE = 10  # non-members above the threshold for a TPR at a fixed FPR to be reported
POINT_METRICS = ("accuracy", "precision", "recall", "balanced_accuracy", "advantage", "auc",
                 "tpr_at_fpr_0.1", "tpr_at_fpr_0.01", "tpr_at_fpr_0.001")


def tpr_measurable(x: float, n_nonmembers: int) -> bool:
    """Whether TPR at FPR ``x`` can be reported with ``n_nonmembers`` (x * n >= 10)."""
    return math.floor(x * n_nonmembers + 1e-9) >= MIN_ABOVE
N_BOOTSTRAP = 1000
LEVEL = 0.95


def _as_xy(is_member, score) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(is_member).astype(bool)
    s = np.asarray(score, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError("attack metrics: is_member and score must be 1-D of equal length")
    if y.all() or not y.any():
        raise ValueError("attack metrics need both members and non-members")
    return y, s


def _rank_auc(s1: np.ndarray, s0: np.ndarray) -> np.ndarray:
    """AUC of member scores ``s1`` (..., n1) against non-member scores ``s0`` (..., n0)."""
    from scipy.stats import rankdata

    n1, n0 = s1.shape[-1], s0.shape[-1]
    ranks = rankdata(np.concatenate([s1, s0], axis=-1), axis=-1)  # ties: average ranks
    return (ranks[..., :n1].sum(-1) - n1 * (n1 + 1) / 2.0) / (n1 * n0)


def _tpr_at_fpr(s1: np.ndarray, s0: np.ndarray, x: float) -> np.ndarray:
    """TPR at FPR ``x``: the share of members strictly above the (k+1)-th highest
    non-member score (k = floor(x * n0)), nan unless at least :data:`MIN_ABOVE` non-members
    lie strictly above it (with ties at the cut fewer than k do; see the module doc)."""
    n0 = s0.shape[-1]
    k = int(math.floor(x * n0 + 1e-9))
    if k < MIN_ABOVE:  # not measurable with so few non-members (see the module doc)
        return np.full(s1.shape[:-1], np.nan)
    if k >= n0:
        return np.ones(s1.shape[:-1])
    kth = -np.partition(-s0, k, axis=-1)[..., k]  # the (k+1)-th highest non-member score
    above = (s0 > kth[..., None]).sum(-1)  # k without ties at the cut, fewer with them
    return np.where(above >= MIN_ABOVE, (s1 > kth[..., None]).mean(-1), np.nan)


def _metrics_from_split(s1: np.ndarray, s0: np.ndarray, threshold) -> dict[str, np.ndarray]:
    """All point metrics from member and non-member scores (leading axes are batches)."""
    thr = np.asarray(threshold, dtype=np.float64)[..., None]
    n1, n0 = s1.shape[-1], s0.shape[-1]
    tp = (s1 >= thr).sum(-1)
    fp = (s0 >= thr).sum(-1)
    tpr, fpr = tp / n1, fp / n0
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
    out = {
        "accuracy": (tp + (n0 - fp)) / (n1 + n0),
        "precision": precision,
        "recall": tpr,
        "balanced_accuracy": (tpr + 1.0 - fpr) / 2.0,
        "advantage": tpr - fpr,
        "auc": _rank_auc(s1, s0),
    }
    for x in LOW_FPRS:
        out[f"tpr_at_fpr_{x:g}"] = _tpr_at_fpr(s1, s0, x)
    return out


def attack_metrics(is_member: np.ndarray, score: np.ndarray, threshold: float = 0.5) -> dict:
    """Point metrics of one attack on the evaluated rows (no intervals)."""
    y, s = _as_xy(is_member, score)
    m = {k: float(v) for k, v in _metrics_from_split(s[y], s[~y], threshold).items()}
    fpr, tpr = roc_points(y, s)
    m["max_advantage_test"] = float(np.max(tpr - fpr))
    m["threshold"] = float(threshold)
    m["n_members"] = m["n_eval_members"] = int(y.sum())
    m["n_nonmembers"] = m["n_eval_nonmembers"] = int((~y).sum())
    m["min_measurable_fpr"] = m["min_fpr"] = 1.0 / m["n_nonmembers"]
    return m


def roc_points(is_member: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The full ROC curve (every threshold kept: dropping points underestimates low-FPR TPR)."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(np.asarray(is_member).astype(int), np.asarray(score, dtype=float),
                            drop_intermediate=False)
    return fpr, tpr


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, x: float) -> float:
    """TPR at the largest FPR <= x of an ROC curve given as points."""
    ok = np.asarray(fpr) <= x
    return float(np.asarray(tpr)[ok].max()) if ok.any() else 0.0


def best_threshold(is_member: np.ndarray, score: np.ndarray, balanced: bool = False) -> float:
    """The threshold on ``score`` with the highest accuracy on these rows (attack-train);
    ``balanced``: the highest balanced accuracy (members and non-members weigh alike).

    Predicting "member" for ``score >= threshold``, the threshold only ever cuts between two
    distinct score values (or above the highest), so the accuracy it optimised is reachable:
    a block of tied scores is never split.
    """
    y = np.asarray(is_member).astype(int)
    s = np.asarray(score, dtype=np.float64)
    values, inverse = np.unique(s, return_inverse=True)  # ascending distinct scores
    w1, w0 = (1.0 / max(y.sum(), 1), 1.0 / max((1 - y).sum(), 1)) if balanced else (1.0, 1.0)
    pos = np.bincount(inverse, weights=y * w1, minlength=len(values))
    neg = np.bincount(inverse, weights=(1 - y) * w0, minlength=len(values))
    # cut j (0..len): predict member for values[j:]; j = len predicts nobody
    tp = np.concatenate([np.cumsum(pos[::-1])[::-1], [0.0]])
    tn = np.concatenate([[0.0], np.cumsum(neg)])
    j = int(np.argmax(tp + tn))
    if j == 0:
        return float(values[0])
    if j == len(values):
        return float(np.nextafter(values[-1], np.inf))
    return float((values[j - 1] + values[j]) / 2.0)


def mean_ci(values, level: float = LEVEL) -> tuple[float, float, float]:
    """Mean of independent replicate values with a Student-t interval (nan for one value):
    ``scipy.stats.t.interval`` around the mean with its standard error."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(v.mean())
    if v.size < 2:
        return m, float("nan"), float("nan")
    sem = float(v.std(ddof=1)) / math.sqrt(v.size)
    if sem == 0.0:  # every value equal: no spread to scale (scipy gives nan there)
        return m, m, m
    from scipy.stats import t

    lo, hi = t.interval(level, v.size - 1, loc=m, scale=sem)
    return m, float(lo), float(hi)


def proportion_ci(successes: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval of a proportion (e.g. a test accuracy over n samples):
    ``scipy.stats.binomtest(...).proportion_ci(method="wilson")``."""
    if n <= 0:
        return float("nan"), float("nan")
    from scipy.stats import binomtest

    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=level,
                                                         method="wilson")
    return float(ci.low), float(ci.high)


def spearman_ci(rho: float, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Interval of a Spearman correlation: Fisher's z with Bonett & Wright's (2000)
    standard error sqrt((1 + rho^2 / 2) / (n - 3)); nan with fewer than 4 points."""
    from scipy.stats import norm

    if n < 4 or not np.isfinite(rho):
        return float("nan"), float("nan")
    z = np.arctanh(np.clip(rho, -0.999999, 0.999999))
    half = norm.ppf(0.5 + level / 2) * np.sqrt((1 + rho * rho / 2) / (n - 3))
    return float(np.tanh(z - half)), float(np.tanh(z + half))


def chance_verdict(low: float, high: float, chance: float = 0.5) -> str:
    """'above chance', 'below chance' or 'at chance' (the interval covers chance)."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return "undetermined"
    if low > chance:
        return "above chance"
    if high < chance:
        return "below chance"
    return "at chance"


def low_fpr_text(m: dict) -> str:
    """'tpr@10%fpr 0.312' for every measurable low FPR of a metrics dict, or why not."""
    parts = [f"tpr@{x:.1%}fpr {m[f'tpr_at_fpr_{x:g}']:.3f}".replace(".0%", "%")
             for x in LOW_FPRS if np.isfinite(m.get(f"tpr_at_fpr_{x:g}", np.nan))]
    n0 = m.get("n_eval_nonmembers")
    smallest = (f"{MIN_ABOVE}/{int(n0)} = {MIN_ABOVE / n0:.3g}" if n0 else
                f"{MIN_ABOVE}/non-members")
    return "  ".join(parts) or (f"tpr at low fpr: n/a (the smallest measurable FPR is "
                                f"{smallest})")
