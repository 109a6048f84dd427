"""RMIA, the relative membership-inference attack of Zarifzadeh et al. 2024 ("Low-Cost
High-Power Membership Inference Attacks"), on K reference models and population samples.

For a sample x: Pr(x|theta) is the target's probability of the true class (from its
log-probabilities, float64) and Pr(x) its mean over reference models:

- offline (default; ``offline: true``): only the OUT references of x (those not trained on
  it), corrected for the missing IN half by the paper's linear approximation
  Pr(x) = ((1 + a) * mean_out(x) + (1 - a)) / 2, with ``a`` (default 0.3);
- online (``offline: false``): the mean over all references, IN and OUT.

LR(x) = Pr(x|theta) / Pr(x), and likewise LR(z) for every population sample z
(``AttackData.population``: target non-members outside the attack sample, with the
references' rows on them and their inclusion). The score of x is the share of population
samples it dominates: score(x) = #{z : LR(x) / LR(z) >= gamma} / #z (``gamma``, default 2.0),
computed in log space with one sort of log LR(z) and a binary search per x. Higher =
member; the decision threshold is the best cut on attack-train rows. The target's
membership labels are never read for the scores.

A row (x or z) with no OUT reference in the offline variant falls back to the mean over all
its references (with K references on random halves this has probability 2^-K per row).
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from .base import AttackData, AttackScores, register_attack
from .lira import check_references, check_settings, threshold_on_train

DEFAULTS = {"a": 0.3, "gamma": 2.0, "offline": True}


def true_class_log_prob(table) -> np.ndarray:
    return table.log_probs[np.arange(len(table)), table.label]


def log_mean_prob(ref_lp: np.ndarray, inc: np.ndarray, offline: bool, a: float) -> np.ndarray:
    """log Pr(x) per column of ``ref_lp`` (K, n) (log-probabilities of the true class)."""
    k = ref_lp.shape[0]
    log_all = logsumexp(ref_lp, axis=0) - np.log(k)
    if not offline:
        return log_all
    out = ~inc
    n_out = out.sum(0)
    masked = np.where(out, ref_lp, -np.inf)
    with np.errstate(divide="ignore"):
        log_out = logsumexp(masked, axis=0) - np.log(np.maximum(n_out, 1))
        # ((1 + a) m + (1 - a)) / 2, in logs (a = 1 leaves log m)
        log_px = np.logaddexp(np.log((1.0 + a) / 2.0) + log_out, np.log((1.0 - a) / 2.0))
    return np.where(n_out > 0, log_px, log_all)


class RMIA:
    def __init__(self, settings: dict | None, seed: int):
        s = {**DEFAULTS, **check_settings("rmia", settings, set(DEFAULTS))}
        if not isinstance(s["offline"], bool):
            raise ValueError(f"config key attack.rmia.offline: {s['offline']!r} is not true "
                             "or false")
        try:
            a, gamma = float(s["a"]), float(s["gamma"])
        except (TypeError, ValueError):
            raise ValueError("config keys attack.rmia.a and attack.rmia.gamma must be "
                             "numbers") from None
        if not 0.0 <= a <= 1.0:
            raise ValueError(f"config key attack.rmia.a: {a} is not in [0, 1]")
        if not gamma > 0.0:
            raise ValueError(f"config key attack.rmia.gamma: {gamma} is not > 0")
        self.a, self.gamma, self.offline = a, gamma, s["offline"]

    def fit_score(self, data: AttackData) -> AttackScores:
        inc = check_references(data, "rmia")
        if (data.population is None or not data.population_references
                or data.population_in is None or len(data.population) == 0):
            raise ValueError("attack 'rmia' needs population rows (AttackData.population, "
                             "population_references and population_in): target "
                             "non-members outside the attack sample")
        pop_in = np.asarray(data.population_in, dtype=bool)
        m = len(data.population)
        if len(data.population_references) != len(data.references) or \
                pop_in.shape != (len(data.references), m):
            raise ValueError("attack 'rmia': population_references/population_in do not "
                             f"match the {len(data.references)} references and {m} "
                             "population rows")
        for k, ref in enumerate(data.population_references):
            if not np.array_equal(ref.sample_id, data.population.sample_id):
                raise ValueError(f"attack 'rmia': population reference {k} is not aligned "
                                 "with the population rows")
        ref_x = np.stack([true_class_log_prob(r) for r in data.references])
        ref_z = np.stack([true_class_log_prob(r) for r in data.population_references])
        log_lr_x = true_class_log_prob(data.target) - log_mean_prob(ref_x, inc, self.offline,
                                                                    self.a)
        log_lr_z = true_class_log_prob(data.population) - log_mean_prob(
            ref_z, pop_in, self.offline, self.a)
        # LR(x) / LR(z) >= gamma  <=>  log LR(z) <= log LR(x) - log gamma
        sorted_z = np.sort(log_lr_z)
        score = np.searchsorted(sorted_z, log_lr_x - np.log(self.gamma),
                                side="right") / float(m)
        score = score.astype(np.float64)
        thr, info = threshold_on_train(data, score)
        info.update({"n_references": len(data.references), "n_population": m,
                     "offline": self.offline, "a": self.a, "gamma": self.gamma})
        return AttackScores(score, thr, info)


@register_attack("rmia", kind="reference", needs_references=True, defaults=DEFAULTS,
                 description="RMIA (Zarifzadeh et al. 2024): share of population samples z "
                             "with LR(x)/LR(z) >= gamma, LR = Pr(x|target)/Pr(x)")
def rmia(settings: dict | None, seed: int) -> RMIA:
    return RMIA(settings, seed)
