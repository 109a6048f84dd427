"""The metric definitions (lottery_mia.stats.metrics): members are the positive class,
thresholds cut between distinct scores, low-FPR rates use every ROC point, paired
differences, and the intervals (scipy's where they are the same)."""

from __future__ import annotations

import numpy as np
import pytest

from lottery_mia.stats.metrics import (attack_metrics, best_threshold, mean_ci,
                                       proportion_ci, roc_points, spearman_ci, tpr_at_fpr)
from lottery_mia.stats.resampling import paired_difference


def test_metric_definitions():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.7, 0.2, 0.6, 0.3, 0.1, 0.05])
    m = attack_metrics(y, s)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["precision"] == pytest.approx(3 / 4) and m["recall"] == pytest.approx(3 / 4)
    assert m["auc"] == pytest.approx(14 / 16)
    # advantage at the chosen threshold: TPR 3/4 - FPR 1/4; the test-fold optimum is apart
    assert m["advantage"] == pytest.approx(0.5)
    assert m["advantage"] == pytest.approx(2 * m["balanced_accuracy"] - 1)
    assert m["max_advantage_test"] == pytest.approx(0.75)  # TPR 3/4 at FPR 0
    # 4 non-members: no FPR is measurable (10 must lie above the threshold)
    assert np.isnan(m["tpr_at_fpr_0.01"]) and np.isnan(m["tpr_at_fpr_0.1"])
    assert m["n_eval_nonmembers"] == 4 and m["min_fpr"] == 0.25
    flipped = attack_metrics(1 - y, s)  # members are the positive class
    assert flipped["auc"] == pytest.approx(1 - m["auc"])
    assert tpr_at_fpr(np.array([0.0, 0.5, 1.0]), np.array([0.0, 0.9, 1.0]), 0.4) == 0.0
    thr = best_threshold(y, s)
    assert ((s >= thr) == y).mean() == pytest.approx(7 / 8)  # best cut: top three



def test_best_threshold_never_cuts_inside_tied_scores():
    # a block of 4 tied scores (2 members, 2 non-members) above 2 members and 6 non-members
    y = np.array([1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0])
    s = np.array([5, 5, 5, 5, 3, 3, 1, 1, 1, 1, 1, 1], dtype=float)
    thr = best_threshold(y, s)
    acc = ((s >= thr) == y).mean()
    best = max(((s >= v) == y).mean() for v in np.r_[np.unique(s), np.inf])
    assert acc == pytest.approx(best) == pytest.approx(10 / 12)
    assert not np.any(s == thr) or thr == s.min()



def test_low_fpr_uses_every_roc_point():
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(500, bool), np.zeros(500, bool)]
    s = np.r_[rng.normal(1, 1, 500), rng.normal(0, 1, 500)]
    fpr, tpr = roc_points(y, s)
    assert len(fpr) == len(np.unique(s)) + 1  # no point dropped
    m = attack_metrics(y, s)
    assert m["tpr_at_fpr_0.1"] == pytest.approx(tpr_at_fpr(fpr, tpr, 0.1))  # 50 above
    assert np.isnan(m["tpr_at_fpr_0.01"])  # 5 non-members above: not measurable
    big = np.r_[np.ones(2000, bool), np.zeros(2000, bool)]
    sb = np.r_[rng.normal(1, 1, 2000), rng.normal(0, 1, 2000)]
    fpr, tpr = roc_points(big, sb)
    assert attack_metrics(big, sb)["tpr_at_fpr_0.01"] == pytest.approx(
        tpr_at_fpr(fpr, tpr, 0.01))



def test_paired_difference_sees_a_real_gap_and_no_gap():
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(400, bool), np.zeros(400, bool)]
    base = np.r_[rng.normal(0.3, 1, 400), rng.normal(0, 1, 400)]
    stronger = base + np.r_[np.full(400, 0.6), np.zeros(400)]
    d = paired_difference(y, base, 0.15, stronger, 0.45, n_boot=500)
    assert d["auc"]["difference"] > 0 and d["auc"]["excludes_zero"]
    same = paired_difference(y, base, 0.15, base, 0.15, n_boot=500)
    assert same["auc"]["difference"] == 0 and not same["auc"]["excludes_zero"]



def test_intervals_are_scipys_and_equal_the_textbook_formulas():
    import math

    from scipy.stats import norm, t

    z = norm.ppf(0.975)
    for k, n in [(0, 10), (10, 10), (233, 250), (5, 7)]:
        p = k / n
        den = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / den
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
        lo, hi = proportion_ci(k, n)  # Wilson, no continuity correction
        assert lo == pytest.approx(max(0.0, centre - half), abs=1e-12)
        assert hi == pytest.approx(min(1.0, centre + half), abs=1e-12)
    v = [0.5, 0.6, 0.7]
    m, lo, hi = mean_ci(v)
    half = t.ppf(0.975, 2) * np.std(v, ddof=1) / math.sqrt(3)
    assert (m, lo, hi) == pytest.approx((0.6, 0.6 - half, 0.6 + half))
    assert mean_ci([0.4, 0.4]) == (0.4, 0.4, 0.4)  # no spread across seeds
    assert np.isnan(mean_ci([0.4])[1])
    lo, hi = spearman_ci(0.5, 20)
    assert lo < 0.5 < hi and np.isnan(spearman_ci(0.5, 3)[0])


# --------------------------------------------------------------------------- low FPR
def _tpr_coverage(n1, n0, x, mu, reps=300):
    from scipy.stats import norm

    from lottery_mia.stats.resampling import bootstrap_metrics

    truth = 1 - norm.cdf(norm.ppf(1 - x) - mu)
    rng = np.random.default_rng(5)
    hits = reported = 0
    y = np.r_[np.ones(n1, bool), np.zeros(n0, bool)]
    for r in range(reps):
        s = np.r_[rng.normal(mu, 1, n1), rng.normal(0, 1, n0)]
        m = bootstrap_metrics(y, s, 0.0, n_boot=300, seed=r)
        lo, hi = m[f"tpr_at_fpr_{x:g}_ci_low"], m[f"tpr_at_fpr_{x:g}_ci_high"]
        if np.isfinite(lo):
            reported += 1
            hits += lo <= truth <= hi
    return reported, hits / max(reported, 1)


@pytest.mark.parametrize("n1, n0, x", [(125, 125, 0.1), (250, 750, 0.1)])
def test_reported_tpr_at_low_fpr_intervals_cover_the_truth(n1, n0, x):
    """At the default sizes (125 + 125 attack-test rows; 250 + 750 scored rows for the
    reference attacks) every reported TPR at a fixed FPR covers the true TPR in 90-98% of
    known-truth repetitions. TPR at 1% FPR is not reported there (fewer than 10 non-members
    above the threshold): its order statistic is biased and its interval under-covers."""
    reported, coverage = _tpr_coverage(n1, n0, x, mu=1.0)
    assert reported == 300
    assert 0.90 <= coverage <= 0.98, coverage
    assert _tpr_coverage(n1, n0, 0.01, mu=1.0, reps=5)[0] == 0  # n/a, never a number


def test_the_low_fpr_log_text_gives_the_smallest_measurable_fpr_as_a_number():
    from lottery_mia.stats.metrics import low_fpr_text

    none = {"tpr_at_fpr_0.1": np.nan, "tpr_at_fpr_0.01": np.nan, "tpr_at_fpr_0.001": np.nan,
            "n_eval_nonmembers": 50}
    assert low_fpr_text(none) == ("tpr at low fpr: n/a (the smallest measurable FPR is "
                                  "10/50 = 0.2)")
    some = {**none, "tpr_at_fpr_0.1": 0.3125, "n_eval_nonmembers": 200}
    assert low_fpr_text(some) == "tpr@10%fpr 0.312"
