"""Metric definitions for membership-inference attacks (the single definition).

Conventions: members are the positive class (label 1). Scores are continuous "how likely a
member" values; ROC-based metrics are computed from scores, never from hard 0/1 decisions.
Hard decisions (accuracy, precision, recall) use ``score >= threshold``.

- accuracy, precision, recall (members positive), balanced accuracy;
- auc: area under the ROC curve;
- advantage: max over thresholds of TPR - FPR (Yeom et al.'s membership advantage);
- tpr_at_fpr_X: the TPR at the largest FPR <= X on the ROC curve (0 if none); the smallest
  non-zero FPR that can be measured is 1 / n_nonmembers, which is reported beside it.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (accuracy_score, balanced_accuracy_score, precision_score,
                             recall_score, roc_auc_score, roc_curve)

LOW_FPRS = (0.01, 0.001)


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, x: float) -> float:
    ok = fpr <= x
    return float(tpr[ok].max()) if ok.any() else 0.0


def attack_metrics(is_member: np.ndarray, score: np.ndarray, threshold: float = 0.5) -> dict:
    y = np.asarray(is_member).astype(int)
    s = np.asarray(score, dtype=float)
    if y.min() == y.max():
        raise ValueError("attack metrics need both members and non-members")
    pred = (s >= threshold).astype(int)
    fpr, tpr, _ = roc_curve(y, s)
    out = {
        "accuracy": float(accuracy_score(y, pred)),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
        "auc": float(roc_auc_score(y, s)),
        "advantage": float(np.max(tpr - fpr)),
        "n_members": int(y.sum()),
        "n_nonmembers": int((1 - y).sum()),
    }
    for x in LOW_FPRS:
        out[f"tpr_at_fpr_{x:g}"] = tpr_at_fpr(fpr, tpr, x)
    return out


def roc_points(is_member: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    fpr, tpr, _ = roc_curve(np.asarray(is_member).astype(int), np.asarray(score, dtype=float))
    return fpr, tpr


def best_threshold(is_member: np.ndarray, score: np.ndarray) -> float:
    """The threshold on ``score`` with the highest accuracy (used on attack-train data only)."""
    y = np.asarray(is_member).astype(int)
    s = np.asarray(score, dtype=float)
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    # predicting "member" for the top k: correct = members in top k + non-members below k
    tp = np.concatenate([[0], np.cumsum(y_sorted)])
    tn = (1 - y).sum() - np.concatenate([[0], np.cumsum(1 - y_sorted)])
    k = int(np.argmax(tp + tn))
    if k == 0:
        return float(s_sorted[0]) + 1e-12
    if k == len(s):
        return float(s_sorted[-1])
    return float((s_sorted[k - 1] + s_sorted[k]) / 2.0)
