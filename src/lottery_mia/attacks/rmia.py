"""RMIA, the relative membership-inference attack of Zarifzadeh et al. 2024 ("Low-Cost
High-Power Membership Inference Attacks"), on K reference models and population samples.

For a sample x: Pr(x|theta) is the target's probability of the true class (from its
log-probabilities, float64) and Pr(x) its mean over reference models:

- offline (default; ``offline: true``): only the OUT references of x (those not trained on
  it), corrected for the missing IN half by the paper's linear approximation
  Pr(x) = ((1 + a) * mean_out(x) + (1 - a)) / 2. ``a`` is tuned as the paper does
  (``a: auto``, the default): one reference model plays the target, the others its
  references, and the a of {0, 0.1, ..., 1} whose RMIA AUC against that reference's own
  inclusion is highest is used (needs 3 or more references; a number overrides it);
- online (``offline: false``): the mean over all references, IN and OUT.

LR(x) = Pr(x|theta) / Pr(x), and likewise LR(z) for every population sample z
(``AttackData.population``: the target's scored non-members, with the references' rows on
them and their inclusion). The score of x is the share of population
samples it dominates: score(x) = #{z : LR(x) / LR(z) >= gamma} / #z (``gamma``, default 2.0),
computed in log space with one sort of log LR(z) and a binary search per x. Higher =
member; the decision threshold is the best cut on attack-train rows. The target's
membership labels are never read for the scores.

Only rows x the references' inclusion design covers (IN for some reference, OUT for
another) are scored; the others get nan (:mod:`lottery_mia.attacks.lira` says why), and ``a``
is tuned on covered rows only. A population sample z with no OUT reference in the offline
variant falls back to the mean over all its references (the z only set the scale of the
score: it is monotone in LR(x) whatever they are).
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from .base import AttackData, AttackScores, register_attack
from .lira import check_references, check_settings, threshold_on_train

DEFAULTS = {"a": "auto", "gamma": 2.0, "offline": True}
A_GRID = tuple(round(0.1 * i, 1) for i in range(11))


def true_class_log_prob(table) -> np.ndarray:
    """log P(true class) of every row: stored by a reduced reference (ReferenceRows),
    computed from a table's logits otherwise (the same number)."""
    stored = getattr(table, "log_p_true", None)
    if stored is not None:
        return stored
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
            a = "auto" if s["a"] == "auto" else float(s["a"])
            gamma = float(s["gamma"])
        except (TypeError, ValueError):
            raise ValueError("config keys attack.rmia.a (a number or auto) and "
                             "attack.rmia.gamma must be numbers") from None
        if a != "auto" and not 0.0 <= a <= 1.0:
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
        tgt_x, tgt_z = true_class_log_prob(data.target), true_class_log_prob(data.population)
        judged = data.judged()  # rows IN for some references and OUT for others
        a, tuned = self.a, None
        if a == "auto":
            a, tuned = tune_a(ref_x[:, judged], inc[:, judged], ref_z, pop_in, self.gamma,
                              self.offline)
        score = rmia_scores(tgt_x, ref_x, inc, tgt_z, ref_z, pop_in, a, self.gamma,
                            self.offline)
        score = np.where(judged, score, np.nan)  # see lottery_mia.attacks.lira
        thr, info = threshold_on_train(data, score)
        info.update({"n_references": len(data.references), "n_population": m,
                     "offline": self.offline, "a": a, "a_tuned": tuned is not None,
                     "gamma": self.gamma})
        if tuned is not None:
            info["a_tuning_auc"] = tuned
        return AttackScores(score, thr, info)


def rmia_scores(tgt_x, ref_x, inc_x, tgt_z, ref_z, inc_z, a: float, gamma: float,
                offline: bool) -> np.ndarray:
    """RMIA's score of every x: the share of population samples z with
    LR(x) / LR(z) >= gamma (log-probabilities of the true class; ``ref_*``: (K, n))."""
    log_lr_x = tgt_x - log_mean_prob(ref_x, inc_x, offline, a)
    log_lr_z = tgt_z - log_mean_prob(ref_z, inc_z, offline, a)
    # LR(x) / LR(z) >= gamma  <=>  log LR(z) <= log LR(x) - log gamma
    sorted_z = np.sort(log_lr_z)
    return (np.searchsorted(sorted_z, log_lr_x - np.log(gamma), side="right")
            / float(len(sorted_z))).astype(np.float64)


def tune_a(ref_x, inc_x, ref_z, inc_z, gamma: float, offline: bool) -> tuple[float, float]:
    """The paper's choice of a: reference 0 plays the target (its inclusion is the truth),
    references 1.. its references, population samples z those reference 0 did not train
    on; the a of :data:`A_GRID` with the highest AUC (ties: the first). Returns (a, AUC)."""
    from ..stats.metrics import attack_metrics

    if ref_x.shape[0] < 3:
        raise ValueError("attack 'rmia' with a: auto tunes a on a reference model and needs "
                         "at least 3 references; set attack.rmia.a to a number (0.3 is the "
                         "paper's CIFAR value) or raise references.count")
    y = inc_x[0]
    z = ~inc_z[0]
    if y.all() or not y.any() or not z.any():
        raise ValueError("attack 'rmia': reference 0 has no IN or no OUT rows to tune a on")
    best = (A_GRID[0], -1.0)
    for a in A_GRID:
        s = rmia_scores(ref_x[0], ref_x[1:], inc_x[1:], ref_z[0][z], ref_z[1:, z],
                        inc_z[1:, z], a, gamma, offline)
        auc = attack_metrics(y, s)["auc"]
        if auc > best[1] + 1e-12:
            best = (a, auc)
    return float(best[0]), float(best[1])




MIN_REFERENCES_AUTO = 4  # a: auto tunes a on one reference, the others its references


def references_problem(settings: dict | None, n_references: int) -> str | None:
    """Why RMIA with ``settings`` cannot run on ``n_references`` references (None: it can):
    ``a: auto`` tunes a on one reference with the others as its references."""
    if {**DEFAULTS, **(settings or {})}["a"] != "auto" or n_references >= MIN_REFERENCES_AUTO:
        return None
    return (f"a: auto tunes a on one reference with the others as its references and needs "
            f"{MIN_REFERENCES_AUTO} or more (there are {n_references}); set a to a number "
            "(0.3 is the paper's CIFAR value) or add references")


@register_attack("rmia", kind="reference", needs_references=True, defaults=DEFAULTS,
                 references_problem=references_problem,
                 description="RMIA (Zarifzadeh et al. 2024): share of population samples z "
                             "with LR(x)/LR(z) >= gamma, LR = Pr(x|target)/Pr(x)")
def rmia(settings: dict | None, seed: int) -> RMIA:
    return RMIA(settings, seed)
