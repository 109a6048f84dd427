"""Does one network leak more, less or the same as another? Verdicts over training seeds
and the shared attack rows, their families, and the seeds a decision needs.

The unit of inference is the training seed, and every seed's networks are attacked on the
same rows. So the difference b - a of an attack metric has two sources of uncertainty:

- training randomness: the seeds' paired differences d_r (seed r of a and of b) scatter
  with standard deviation s_d, and their mean has variance s_d^2 / R over R seeds;
- the sampling of the shared rows: a row that happens to suit model a's attack better than
  model b's does so for every seed, which the spread of the d_r cannot show. Its part is
  the variance v_rows of the seed-mean difference over resampled rows (the stratified
  bootstrap of :func:`lottery_mia.stats.metrics.bootstrap_samples`, the same draws for both
  models and every seed, within class x membership strata).

The standard error of the mean difference is sqrt(s_d^2 / R + v_rows) (the row part of
each seed's own noise is in both terms, so this errs on the wide side), with
Welch-Satterthwaite degrees of freedom (v_rows taken as known). From it: the 95% interval,
the two-sided p-value against 0 and the TOST p-value against +-margin (equivalent when the
90% interval lies inside +-margin). With fewer than :data:`MIN_SEEDS` seeds there is no
estimate of training randomness: the row interval describes these networks only and the
verdict is ``inconclusive`` ("1 seed: these networks only"); no claim counts it.

Known-truth simulations (``tests/test_inference.py``): no true effect, seed SD 0.03 in AUC
and a model-specific row effect as large as the seed noise: directional verdicts in at most
7% of experiments with 3 and with 10 seeds (measured 5.5% and 4.5% of 200; the t interval
over seeds alone: 18% and 47.5%); a true difference of 0.1 with 5 seeds: decided in at least
80% (measured 95%).

:func:`seeds_needed`: the seeds at which, with the observed s_d and v_rows, the test would
have 80% power to decide (equivalence at the margin when the observed difference lies
inside it, else the observed difference), at the family's strictest Holm level alpha / F.
"""

from __future__ import annotations

import math

import numpy as np

VERDICTS = ("leaks_more", "leaks_less", "equivalent", "inconclusive")
MIN_SEEDS = 3
ALPHA = 0.05
LEVEL = 0.95
POWER = 0.8
MAX_SEEDS = 1000  # beyond this, "more seeds" is not the answer: more rows are


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values of a family of tests (nan stays nan)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    m = order.size
    running = 0.0
    for i, idx in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[idx]))
        out[idx] = running
    return out


def _df(seed_var: float, r: int, row_var: float) -> float:
    """Welch-Satterthwaite degrees of freedom of s_d^2 / R + v_rows (v_rows known)."""
    a = seed_var / r
    if a <= 0:
        return math.inf
    return (a + row_var) ** 2 / (a * a / (r - 1))


def seed_row_test(d: np.ndarray, row_var: float, margin: float,
                  level: float = LEVEL) -> dict:
    """The mean of per-seed differences ``d`` (R >= 2) with its interval over seeds and
    rows, p against 0, TOST p against +-``margin``."""
    from scipy.stats import t

    r = d.size
    mean = float(d.mean())
    seed_var = float(d.var(ddof=1))
    var = seed_var / r + max(row_var, 0.0)
    se = math.sqrt(var) if var > 0 else 1e-12
    df = _df(seed_var, r, max(row_var, 0.0))
    q = t.ppf(0.5 + level / 2.0, df)
    q90 = t.ppf(0.95, df)
    return {"diff": mean, "ci_low": mean - q * se, "ci_high": mean + q * se,
            "ci90_low": mean - q90 * se, "ci90_high": mean + q90 * se,
            "p_value": float(2 * t.sf(abs(mean) / se, df)),
            "p_equivalence": float(max(t.sf((mean + margin) / se, df),
                                       t.cdf((mean - margin) / se, df))),
            "se": se, "df": df, "seed_sd": math.sqrt(seed_var),
            "row_se": math.sqrt(max(row_var, 0.0))}


def power_at(k: int, diff: float, seed_sd: float, row_var: float, margin: float,
             alpha: float) -> tuple[float, float]:
    """(power to show the difference ``diff`` is not 0, power to show equivalence within
    +-``margin`` if the true difference is ``diff``) with ``k`` seeds."""
    from scipy.stats import t

    seed_var = seed_sd * seed_sd
    se = math.sqrt(seed_var / k + row_var)
    if not se > 0:
        return (1.0 if diff else 0.0), (1.0 if abs(diff) < margin else 0.0)
    df = _df(seed_var, k, row_var)
    p_diff = float(t.sf(t.ppf(1 - alpha / 2, df) - abs(diff) / se, df))
    crit = t.ppf(1 - alpha, df)
    p_eq = float(max(0.0, t.cdf((margin - abs(diff)) / se - crit, df)
                     + t.cdf((margin + abs(diff)) / se - crit, df) - 1.0))
    return p_diff, p_eq


def seeds_needed(diff: float, seed_sd: float, row_var: float, margin: float,
                 alpha: float = ALPHA, power: float = POWER) -> float:
    """The fewest seeds (>= :data:`MIN_SEEDS`) at which the test would decide with
    ``power``: equivalence when |diff| < margin, a difference otherwise (whichever comes
    first); inf when no number of seeds would (the rows' own uncertainty alone is too
    large: more attack rows are needed), nan when the seed spread is unknown."""
    if not (np.isfinite(diff) and np.isfinite(seed_sd) and np.isfinite(row_var)):
        return float("nan")

    def decides(k: int) -> bool:
        p_diff, p_eq = power_at(k, diff, seed_sd, row_var, margin, alpha)
        return max(p_diff, p_eq) >= power

    if not decides(MAX_SEEDS):
        return float("inf")
    lo, hi = MIN_SEEDS, MAX_SEEDS  # power grows with k: bisect for the first k
    if decides(lo):
        return float(lo)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if decides(mid) else (mid, hi)
    return float(hi)


def compare(is_member, scores_a, thresholds_a, scores_b, thresholds_b, *, margins: dict,
            metrics=("auc", "balanced_accuracy"), strata=None, n_boot: int = 1000,
            seed: int = 0, level: float = LEVEL) -> dict:
    """b - a for each metric on the same evaluated rows; ``scores_*``: (R, n) scores of R
    seeds' networks (seed r of a and b paired), ``thresholds_*`` one per seed, ``strata``
    the rows' classes (the bootstrap resamples within class x membership), ``margins``
    metric -> equivalence margin.

    Returns metric -> {a, b, diff, ci_low, ci_high (95%), ci90_low, ci90_high, p_value,
    p_equivalence, n_seeds, scope, row_ci_low, row_ci_high, seed_sd, row_var, note}, or
    None for a metric not measurable on these rows (a TPR at an FPR with too few
    non-members above the cut). ``scope`` is ``seeds and rows`` (R >= 3) or ``these
    networks`` (p-values nan: no verdict)."""
    from .metrics import attack_metrics
    from .resampling import _percentile, _stack, bootstrap_samples

    y = np.asarray(is_member).astype(bool)
    sa, ta = _stack(scores_a, thresholds_a)
    sb, tb = _stack(scores_b, thresholds_b)
    if sa.shape != sb.shape:
        raise ValueError(f"compare: {sa.shape[0]} and {sb.shape[0]} seeds' scores; the two "
                         "models must be paired seed by seed on the same rows")
    r = sa.shape[0]
    ba = bootstrap_samples(y, sa, ta, n_boot=n_boot, seed=seed, strata=strata)
    bb = bootstrap_samples(y, sb, tb, n_boot=n_boot, seed=seed, strata=strata)
    pa = [attack_metrics(y, sa[i], ta[i]) for i in range(r)]
    pb = [attack_metrics(y, sb[i], tb[i]) for i in range(r)]
    out = {}
    for k in metrics:
        va = np.array([p[k] for p in pa])
        vb = np.array([p[k] for p in pb])
        if not (np.isfinite(va).all() and np.isfinite(vb).all()):
            out[k] = None
            continue
        boot = bb[k] - ba[k]
        boot = boot[np.isfinite(boot)]
        row_var = float(boot.var(ddof=1)) if boot.size > 1 else float("nan")
        row_lo, row_hi = _percentile(boot, level)
        d = vb - va
        base = {"a": float(va.mean()), "b": float(vb.mean()), "n_seeds": r,
                "row_ci_low": row_lo, "row_ci_high": row_hi, "row_var": row_var,
                "margin": float(margins[k])}
        if r >= MIN_SEEDS:
            res = seed_row_test(d, row_var, float(margins[k]), level)
            out[k] = {**base, **res, "scope": "seeds and rows", "note": ""}
        else:
            sd = float(d.std(ddof=1)) if r > 1 else float("nan")
            out[k] = {**base, "diff": float(d.mean()), "ci_low": row_lo, "ci_high": row_hi,
                      "ci90_low": float("nan"), "ci90_high": float("nan"),
                      "p_value": float("nan"), "p_equivalence": float("nan"),
                      "seed_sd": sd, "scope": "these networks",
                      "note": f"{r} seed{'s' * (r != 1)}: these networks only"}
    return out


def verdict_of(diff: float, p_value: float, p_equivalence: float,
               alpha: float = ALPHA) -> str:
    """``equivalent`` (|difference| < margin by two one-sided tests), else ``leaks_more`` /
    ``leaks_less`` (the difference is not 0), else ``inconclusive``; p-values adjusted for
    the family they belong to (nan: no test, ``inconclusive``)."""
    if np.isfinite(p_equivalence) and p_equivalence < alpha:
        return "equivalent"
    if np.isfinite(p_value) and p_value < alpha:
        return "leaks_more" if diff > 0 else "leaks_less"
    return "inconclusive"


def decide_family(rows: list[dict], alpha: float = ALPHA) -> list[dict]:
    """Holm-adjust one family of comparisons and set each row's ``verdict``,
    ``p_holm``, ``p_equivalence_holm``, ``seeds_needed`` and ``power`` (planned at the
    family's strictest level alpha / F, F its tests)."""
    p = holm([r["p_value"] for r in rows])
    pe = holm([r["p_equivalence"] for r in rows])
    family = max(1, int(np.isfinite([r["p_value"] for r in rows]).sum()))
    for r, a, b in zip(rows, p, pe):
        r["p_holm"], r["p_equivalence_holm"] = float(a), float(b)
        r["verdict"] = verdict_of(r["diff"], a, b, alpha)
        r["seeds_needed"] = seeds_needed(r["diff"], r.get("seed_sd", float("nan")),
                                         r.get("row_var", float("nan")), r["margin"],
                                         alpha / family)
        r["power"] = power_now(r, alpha / family)
    return rows


def power_now(r: dict, alpha: float) -> float:
    """The power this comparison has with its own seeds (to decide: equivalence at the
    margin or the observed difference, whichever is higher); nan below MIN_SEEDS."""
    k = int(r.get("n_seeds", 0))
    sd, rv = r.get("seed_sd", float("nan")), r.get("row_var", float("nan"))
    if k < MIN_SEEDS or not (np.isfinite(sd) and np.isfinite(rv) and np.isfinite(r["diff"])):
        return float("nan")
    return float(max(power_at(k, r["diff"], sd, rv, r["margin"], alpha)))


def decision_text(r: dict) -> str:
    """What would decide an inconclusive row ('' for a decided one)."""
    if r["verdict"] != "inconclusive":
        return ""
    k = r.get("seeds_needed", float("nan"))
    pw = r.get("power", float("nan"))
    now = f"this run had {pw:.0%} power to decide it; " if np.isfinite(pw) else ""
    if np.isnan(k):
        return "with 3 or more seeds the training randomness can be estimated"
    if np.isinf(k):
        return (now + "no number of seeds would decide this on these rows: the uncertainty "
                "of the attack rows alone is too large (more attack rows are needed)")
    return now + f"about {int(k)} seeds would decide this (80% power)"


def gap_adjusted(values: dict, gaps: dict, a: str, b: str, level: float = LEVEL) -> dict:
    """b - a at the same generalisation gap: per seed, the attack metric of every model of
    that seed regressed on its train-test accuracy gap (one slope for all seeds, an
    intercept per seed), and the difference of b's and a's residuals; its mean with a
    Student-t interval over seeds. ``values``/``gaps``: seed -> {model: value}. Needs 3 or
    more seeds and 3 or more models per seed with differing gaps (else nan, with a note)."""
    nan = {"diff_at_gap": float("nan"), "diff_at_gap_ci_low": float("nan"),
           "diff_at_gap_ci_high": float("nan"), "gap_slope": float("nan")}
    seeds = [s for s in values if a in values[s] and b in values[s]
             and all(m in gaps.get(s, {}) for m in values[s])]
    if len(seeds) < MIN_SEEDS:
        return {**nan, "gap_note": f"{len(seeds)} seed(s) with both models: needs "
                                   f"{MIN_SEEDS}"}
    if min(len(values[s]) for s in seeds) < 3:
        return {**nan, "gap_note": "fewer than 3 models per seed ran this attack: no slope "
                                   "beside the two compared"}
    xs, ys = [], []
    for s in seeds:  # within-seed centring = an intercept per seed
        g = np.array([gaps[s][m] for m in values[s]], dtype=float)
        v = np.array([values[s][m] for m in values[s]], dtype=float)
        xs.append(g - g.mean())
        ys.append(v - v.mean())
    x, y = np.concatenate(xs), np.concatenate(ys)
    if not (np.isfinite(x).all() and np.isfinite(y).all()) or float(x @ x) == 0.0:
        return {**nan, "gap_note": "the models' gaps do not differ: no slope"}
    slope = float(x @ y / (x @ x))
    d = np.array([(values[s][b] - values[s][a]) - slope * (gaps[s][b] - gaps[s][a])
                  for s in seeds])
    from .metrics import mean_ci

    m, lo, hi = mean_ci(d, level)
    return {"diff_at_gap": m, "diff_at_gap_ci_low": lo, "diff_at_gap_ci_high": hi,
            "gap_slope": slope, "gap_note": ""}
