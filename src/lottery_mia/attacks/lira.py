"""LiRA, the likelihood-ratio attack of Carlini et al. 2022 ("Membership Inference Attacks
From First Principles"), online and offline, on K reference models.

Statistic: phi = log p_y - log sum_{i != y} p_i, the scaled logit of the true class
(:meth:`ConfidenceTable.scaled_logit`, stable, float64). For every row i of the attack sample,
phi over the references that trained on i (``reference_in[k, i]``, "IN") and over the others
("OUT") are modelled as Gaussians N(mu_in, s_in^2) and N(mu_out, s_out^2), and the target's
phi_t is scored:

- ``lira_online``:  log N(phi_t; mu_in, s_in) - log N(phi_t; mu_out, s_out);
- ``lira_offline``: log Phi((phi_t - mu_out) / s_out), one-sided against OUT only (large when
  phi_t lies far above the OUT distribution; the IN references are not used).

Higher = member. The scores use only the references' confidences, their inclusion and the
target's confidences, never the target's membership labels; the decision threshold is the
best cut on attack-train rows (:func:`lottery_mia.stats.metrics.best_threshold`).

Settings (``attack.lira_online`` / ``attack.lira_offline``):

- ``fixed_variance``: "auto" (default: true with fewer than 64 references), true or false.
  True: one variance for IN and one for OUT, pooled over all rows, as the paper recommends
  with few references. The estimator is the unbiased pooled within-row variance
  sum_i sum_{k in IN_i} (phi_ki - mu_in,i)^2 / sum_i (|IN_i| - 1) (likewise OUT). Carlini et
  al.'s released code uses instead the global standard deviation of every IN score, reused
  for OUT; that one adds the spread of the rows' means, and the earlier estimator here
  divided by sum_i |IN_i|, which underestimates sigma by sqrt(2) with two IN references per
  row (K = 4). ``tests/test_reference_attacks.py`` checks on a known-truth family that the
  pooled estimator recovers sigma and that LiRA with it is at least as good as with
  Carlini's. False: per-row variances (ddof 1; rows with fewer than two IN or OUT
  references fall back to the pooled one).

With several scored views per sample (``confidences.augmentations: 2``: the image and its
flip), a Gaussian is fitted per view and the per-view scores (log-likelihood ratios online,
log-probabilities offline) are averaged, as Carlini et al.'s code combines them.

Only rows the references' inclusion design covers are scored: a row with no IN or no OUT
reference gets a nan score (online and offline alike), never imputed statistics. Filling in
a row without IN references (say mu_in = mu_out + the mean shift of the other rows) makes
"was this row in the references' pool" a membership signal whenever every member is in the
pool and some non-members are not: with no membership effect at all that gave TPR 0.287 at
10% FPR (K = 4, 250 members, 750 non-members). Offline LiRA would not need IN references,
but rows outside the pool have twice as many OUT references as pool rows, a second
geometry signal; so both variants score the same covered rows. Variances get a floor of
``EPS``.
"""

from __future__ import annotations

import numpy as np

from ..stats.metrics import best_threshold
from .base import AttackData, AttackScores, register_attack

EPS = 1e-6  # floor on every variance (a row whose references all agree)
AUTO_FIXED_BELOW = 64  # "auto": one pooled variance with fewer references than this


def check_settings(name: str, settings: dict | None, allowed: set[str]) -> dict:
    """``settings`` as a dict, or a ValueError naming ``attack.<name>`` and unknown keys."""
    if settings is None:
        return {}
    if not isinstance(settings, dict):
        raise ValueError(f"config key attack.{name}: settings must be a mapping, got "
                         f"{type(settings).__name__}")
    unknown = sorted(set(settings) - allowed)
    if unknown:
        raise ValueError(f"config key attack.{name}: unknown setting(s) {unknown}; "
                         f"allowed: {sorted(allowed)}")
    return dict(settings)


def check_references(data: AttackData, name: str) -> np.ndarray:
    """The (K, n_rows) inclusion matrix, after checking the references are aligned."""
    if not data.references or data.reference_in is None:
        raise ValueError(f"attack {name!r} needs reference models (AttackData.references and "
                         "reference_in)")
    inc = np.asarray(data.reference_in, dtype=bool)
    n = len(data.sample)
    if inc.shape != (len(data.references), n):
        raise ValueError(f"attack {name!r}: reference_in has shape {inc.shape}, expected "
                         f"({len(data.references)}, {n})")
    ids = data.sample["sample_id"].to_numpy()
    for k, ref in enumerate(data.references):
        if len(ref) != n or not np.array_equal(ref.sample_id, ids):
            raise ValueError(f"attack {name!r}: reference {k} is not aligned with the attack "
                             "sample (same sample_id order required)")
    return inc


def threshold_on_train(data: AttackData, score: np.ndarray) -> tuple[float, dict]:
    """The cut with the best balanced accuracy on the attack-train rows the attack scored
    (a reference attack scores only the rows its references can judge, so these rows can
    hold unequal numbers of members and non-members), and that balanced accuracy. Without
    a scored member or non-member there, the median scored attack-train (else scored) row:
    a cut that reads no membership label."""
    y = data.is_member[data.train]
    s = score[data.train]
    ok = np.isfinite(s)
    y, s = y[ok], s[ok]
    if y.all() or not y.any():
        finite = s if s.size else score[np.isfinite(score)]
        thr = float(np.median(finite)) if finite.size else 0.0
        return thr, {"train_accuracy": float("nan"), "threshold_rows": int(s.size)}
    thr = best_threshold(y, s, balanced=True)
    pred = s >= thr
    bal = 0.5 * (pred[y].mean() + (~pred[~y]).mean())
    return thr, {"train_accuracy": float(bal), "threshold_rows": int(s.size)}


def _gaussian_fit(phi: np.ndarray, mask: np.ndarray, fixed: bool):
    """Per-row mean and variance of phi (K, n) over the references marked in ``mask``: the
    unbiased pooled within-row variance (fixed), or each row's own (ddof 1)."""
    count = mask.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = np.where(count > 0, (phi * mask).sum(0) / np.maximum(count, 1), np.nan)
    dev2 = np.where(mask, (phi - np.nan_to_num(mu)[None, :]) ** 2, 0.0)
    dof = int(np.maximum(count - 1, 0).sum())
    pooled = float(dev2.sum() / dof) if dof > 0 else float(np.var(phi[mask])) if \
        mask.any() else 1.0
    if fixed:
        var = np.full(phi.shape[1], pooled)
    else:
        var = np.where(count >= 2, dev2.sum(0) / np.maximum(count - 1, 1), pooled)
    return mu, np.maximum(var, EPS), count


DEFAULTS = {"fixed_variance": "auto"}  # attack.lira_online / attack.lira_offline


class LiRA:
    def __init__(self, name: str, online: bool, settings: dict | None, seed: int):
        s = {**DEFAULTS, **check_settings(name, settings, set(DEFAULTS))}
        fixed = s["fixed_variance"]
        if fixed != "auto" and not isinstance(fixed, bool):
            raise ValueError(f"config key attack.{name}.fixed_variance: {fixed!r} is not "
                             "'auto', true or false")
        self.name, self.online, self.fixed = name, online, fixed

    def statistics(self, data: AttackData) -> tuple[np.ndarray, np.ndarray]:
        """The statistic of every reference (K, n, views) and of the target (n, views):
        the scaled logit of the true class."""
        views = np.stack([r.scaled_logit_views() for r in data.references])  # (K, n, V)
        return views, data.target.scaled_logit_views()  # (n, V)

    def fit_score(self, data: AttackData) -> AttackScores:
        inc = check_references(data, self.name)
        views, views_t = self.statistics(data)
        if views.shape[2] != views_t.shape[1]:
            raise ValueError(f"attack {self.name!r}: the target was scored on "
                             f"{views_t.shape[1]} view(s), the references on {views.shape[2]}; "
                             "score them alike (confidences.augmentations)")
        fixed = len(data.references) < AUTO_FIXED_BELOW if self.fixed == "auto" else self.fixed
        per_view = [self._score_view(views[:, :, v], views_t[:, v], inc, fixed)
                    for v in range(views.shape[2])]
        score = np.mean([s for s, _ in per_view], axis=0).astype(np.float64)
        thr, info = threshold_on_train(data, score)
        info.update(per_view[0][1])
        info.update({"n_references": len(data.references), "fixed_variance": bool(fixed),
                     "views": int(views.shape[2])})
        return AttackScores(score, thr, info)

    def _score_view(self, phi: np.ndarray, phi_t: np.ndarray, inc: np.ndarray, fixed: bool):
        """One view's scores (phi: (K, n) references, phi_t: (n,) target)."""
        from scipy.stats import norm

        mu_in, var_in, n_in = _gaussian_fit(phi, inc, fixed)
        mu_out, var_out, n_out = _gaussian_fit(phi, ~inc, fixed)
        judged = (n_in > 0) & (n_out > 0)  # nothing is imputed: other rows are not scored
        shift = float(np.mean(mu_in[judged] - mu_out[judged])) if judged.any() else 0.0
        s_in, s_out = np.sqrt(var_in), np.sqrt(var_out)
        with np.errstate(invalid="ignore"):
            if self.online:
                score = norm.logpdf(phi_t, mu_in, s_in) - norm.logpdf(phi_t, mu_out, s_out)
            else:
                score = norm.logcdf((phi_t - mu_out) / s_out)
        score = np.where(judged, score, np.nan)
        return np.asarray(score, dtype=np.float64), {
            "mean_shift": shift, "rows_without_in": int((n_in == 0).sum()),
            "rows_without_out": int((n_out == 0).sum()),
            "sigma_in": float(np.sqrt(var_in).mean()),
            "sigma_out": float(np.sqrt(var_out).mean())}


@register_attack("lira_online", kind="reference", needs_references=True, defaults=DEFAULTS,
                 description="LiRA online (Carlini et al. 2022): Gaussian likelihood ratio "
                             "of the scaled logit, IN vs OUT references")
def lira_online(settings: dict | None, seed: int) -> LiRA:
    return LiRA("lira_online", True, settings, seed)


@register_attack("lira_offline", kind="reference", needs_references=True, defaults=DEFAULTS,
                 description="LiRA offline (Carlini et al. 2022): one-sided Gaussian test of "
                             "the scaled logit against OUT references")
def lira_offline(settings: dict | None, seed: int) -> LiRA:
    return LiRA("lira_offline", False, settings, seed)
