"""A quantile-regression attack without reference models (after Bertran et al., "Scalable
Membership Inference Attacks via Quantile Regression", NeurIPS 2023; ``quantile-mia``).

The target's statistic is the hinge score s = z_y - max_{y' != y} z_{y'} of its logits. An
adversary with public data from the same distribution, known not to be in training, fits a
regressor of a non-member's score given the input: its location mu(x) and scale sigma(x);
the membership score of a row is (s - mu(x)) / sigma(x), and the cut is placed on the
attack-train rows. No reference model is trained: one regressor per target.

Here the public non-members are the target's scored non-members outside the attack sample
(fold ``outside``): never an attack-train or attack-test row. The input x is the sample's
thumbnail (:meth:`lottery_mia.datasets.registry.DatasetSource.thumbnails`: at most 8 x 8
pixels per channel, the ``input_features`` job) and its class's mean public score
(leave-one-out on the public rows, shrunk toward the overall mean). mu is a histogram
gradient-boosting regressor (squared error); sigma a second one fit on the absolute
residuals of out-of-fold mu (``folds``), so it is not fit on residuals mu has memorised.

Deviations from the paper, written down: the published attack trains a deep network on the
full image with the pinball loss (or a Gaussian likelihood); this one is a gradient-boosted
regressor on a thumbnail, cheap enough for every target of the grid on a CPU, and weaker
where difficulty depends on what a thumbnail does not show.
"""

from __future__ import annotations

import numpy as np

from ..stats.metrics import best_threshold
from .base import AttackData, AttackScores, register_attack
from .lira import check_settings

DEFAULTS = {"max_iter": 100, "max_depth": 3, "learning_rate": 0.1, "folds": 5,
            "min_public": 100}
SHRINK = 10.0  # pseudo-rows pulling a class's mean public score toward the overall mean


def hinge(logits: np.ndarray, label: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """z_y - max_{y' != y} z_{y'} per row (float64), ``chunk`` rows at a time (a float64
    copy of ImageNet's 50k x 1000 logits would be 400 MB)."""
    out = np.empty(len(label), dtype=np.float64)
    for a in range(0, len(label), chunk):
        z = np.array(logits[a:a + chunk], dtype=np.float64)
        idx = np.arange(len(z))
        y = label[a:a + chunk]
        true = z[idx, y].copy()
        z[idx, y] = -np.inf
        out[a:a + chunk] = true - z.max(1)
    return out


def class_means(score: np.ndarray, label: np.ndarray, public: np.ndarray) -> np.ndarray:
    """Each row's class mean of the public scores, shrunk toward the public mean by
    :data:`SHRINK` pseudo-rows; a public row's own score is left out of its class's mean."""
    overall = float(score[public].mean())
    classes = int(label.max()) + 1
    total = np.bincount(label[public], score[public], minlength=classes)
    count = np.bincount(label[public], minlength=classes).astype(np.float64)
    t, c = total[label], count[label]
    t = np.where(public, t - score, t)
    c = np.where(public, c - 1, c)
    return (t + SHRINK * overall) / (c + SHRINK)


class QuantileAttack:
    name = "quantile"

    def __init__(self, settings: dict | None, seed: int):
        s = {**DEFAULTS, **check_settings(self.name, settings, set(DEFAULTS))}
        for key, v in s.items():
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
            if not ok or (key != "learning_rate" and int(v) != v) or \
                    (key == "folds" and v < 2):
                raise ValueError(f"config key attack.quantile.{key}: {v!r} is not a "
                                 + ("number above 0" if key == "learning_rate" else
                                    "whole number of at least 2" if key == "folds" else
                                    "whole number above 0"))
        self.settings, self.seed = s, seed

    def _regressor(self, loss: str):
        from sklearn.ensemble import HistGradientBoostingRegressor

        s = self.settings
        return HistGradientBoostingRegressor(
            loss=loss, max_iter=int(s["max_iter"]), max_depth=int(s["max_depth"]),
            learning_rate=float(s["learning_rate"]), random_state=self.seed)

    def fit_score(self, data: AttackData) -> AttackScores:
        from sklearn.model_selection import KFold

        if data.inputs is None:
            raise ValueError("attack 'quantile' needs the input features of every row "
                             "(AttackData.inputs: the input_features job)")
        label = data.target.label
        s = hinge(data.target.logits, label)
        public = (data.sample["fold"].to_numpy() == "outside") & ~data.is_member
        need = int(self.settings["min_public"])
        if public.sum() < need:
            raise ValueError(f"attack 'quantile': {int(public.sum())} scored non-members lie "
                             f"outside the attack sample, fewer than attack.quantile."
                             f"min_public = {need}: score more non-members (datasets.<name>."
                             "nonmembers) or use smaller attack.sample_sizes")
        x = np.hstack([np.asarray(data.inputs, dtype=np.float32),
                       class_means(s, label, public)[:, None].astype(np.float32)])
        x = np.ascontiguousarray(x)
        xp, sp = x[public], s[public]
        mu_model = self._regressor("squared_error").fit(xp, sp)
        oof = np.empty_like(sp)  # out-of-fold locations of the public rows
        folds = KFold(int(self.settings["folds"]), shuffle=True, random_state=self.seed)
        for fit, held in folds.split(xp):
            oof[held] = self._regressor("squared_error").fit(xp[fit], sp[fit]).predict(xp[held])
        resid = np.abs(sp - oof)
        sigma_model = self._regressor("squared_error").fit(xp, resid)
        floor = max(1e-6, 0.05 * float(np.median(resid)))
        sigma = np.maximum(sigma_model.predict(x), floor)
        score = (s - mu_model.predict(x)) / sigma
        thr = best_threshold(data.is_member[data.train], score[data.train])
        train_acc = float(((score[data.train] >= thr) == data.is_member[data.train]).mean())
        return AttackScores(score.astype(np.float64), thr, {
            "train_accuracy": train_acc, "public_rows": int(public.sum()),
            "input_features": int(x.shape[1] - 1)})


@register_attack("quantile", kind="threshold", needs_inputs=True, defaults=DEFAULTS,
                 description="quantile regression (after Bertran et al. 2023): the hinge "
                             "score against a regressor of a non-member's score given the "
                             "input, fit on public non-members; no reference model")
def quantile(settings: dict | None, seed: int) -> QuantileAttack:
    return QuantileAttack(settings, seed)
