"""Threshold attacks on one score per sample (baselines of the field).

loss (Yeom et al. 2018: members have lower loss), confidence (top softmax value), entropy
(members have lower entropy), modified entropy (Song & Mittal 2021). Each score is oriented
so that higher means "more likely a member", computed in float64 from the logits, and its
threshold is the best cut on attack-train rows (never on the rows it is evaluated on).
"""

from __future__ import annotations

import numpy as np

from ..confidences import ConfidenceTable
from ..stats.metrics import best_threshold
from .base import AttackData, AttackScores, register_attack


def loss_score(t: ConfidenceTable) -> np.ndarray:
    return -t.loss


def confidence_score(t: ConfidenceTable) -> np.ndarray:
    return t.log_probs.max(1)


def entropy_score(t: ConfidenceTable) -> np.ndarray:
    lp = t.log_probs
    return (np.exp(lp) * lp).sum(1)  # = -entropy


def modified_entropy_score(t: ConfidenceTable) -> np.ndarray:
    """-( -(1 - p_y) log p_y - sum_{i != y} p_i log(1 - p_i) ), from log-probabilities."""
    lp = t.log_probs
    p = np.exp(lp)
    idx = np.arange(len(t))
    log_1mp = np.log1p(-np.minimum(p, 1.0 - 1e-16))
    lp_y = lp[idx, t.label]
    p_y = p[idx, t.label]
    m_ent = -(1.0 - p_y) * lp_y - ((p * log_1mp).sum(1) - p_y * log_1mp[idx, t.label])
    return -m_ent


METRIC_SCORES = {
    "loss": loss_score,
    "confidence": confidence_score,
    "entropy": entropy_score,
    "modified_entropy": modified_entropy_score,
}


class ThresholdAttack:
    def __init__(self, name: str, settings: dict | None, seed: int):
        if settings:
            raise ValueError(f"config key attack.{name}: threshold attacks take no settings")
        self.name = name
        self.score_fn = METRIC_SCORES[name]

    def fit_score(self, data: AttackData) -> AttackScores:
        s = self.score_fn(data.target)
        thr = best_threshold(data.is_member[data.train], s[data.train])
        train_acc = float(((s[data.train] >= thr) == data.is_member[data.train]).mean())
        return AttackScores(s, thr, {"train_accuracy": train_acc})


for _name, _fn in METRIC_SCORES.items():
    register_attack(_name, kind="threshold", description=(_fn.__doc__ or _name).strip())(
        lambda settings, seed, _n=_name: ThresholdAttack(_n, settings, seed))
