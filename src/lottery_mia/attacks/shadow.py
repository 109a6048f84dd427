"""Shadow-model attack (Shokri et al. 2017) with the reference models as shadows.

One attack model, a scikit-learn ``MLPClassifier``, learns "was this model trained on this
sample?" from the references' own confidence vectors: for every reference k and every row
(the attack sample's rows, plus the population rows when given), the feature vector of
reference k's output on that row is labelled with k's inclusion (IN = 1, OUT = 0). The two
classes are balanced by down-sampling the larger one (seeded), and at most ``max_rows``
rows are kept. The fitted model is applied to the target's rows of the attack sample;
score = P(member). The threshold is 0.5: a shadow attack knows no member of the target, so
no threshold is picked on the target's rows (the target's membership labels are never read,
not even on attack-train rows).

Settings (``attack.shadow_mlp``): any ``MLPClassifier`` constructor argument (defaults:
hidden_layer_sizes (64,), max_iter 600; random_state is the attack seed), plus

- ``features``: the feature vectors, one of ``lottery_mia.attacks.base.FEATURES``
  (default "sorted": the softmax sorted in decreasing order, class-agnostic, so one model
  serves every class; "softmax" is the paper's raw vector). This attack's own setting, not
  the pipeline-wide ``attack.features``;
- ``max_rows``: the most training rows after balancing (default 20000; null: no limit).
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np

from .base import FEATURES, AttackData, AttackScores, attack_features, register_attack
from .lira import check_references, check_settings

NAME = "shadow_mlp"
MLP_DEFAULTS = {"hidden_layer_sizes": (64,), "max_iter": 600}
OWN_DEFAULTS = {"features": "sorted", "max_rows": 20000}


def _mlp_class():
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier


class ShadowMLP:
    threshold = 0.5

    def __init__(self, settings: dict | None, seed: int):
        cls = _mlp_class()
        allowed = set(inspect.signature(cls).parameters) - {"random_state"}
        allowed |= set(OWN_DEFAULTS)
        s = check_settings(NAME, settings, allowed)
        own = {k: s.pop(k, v) for k, v in OWN_DEFAULTS.items()}
        if own["features"] not in FEATURES:
            raise ValueError(f"config key attack.{NAME}.features: {own['features']!r} is not "
                             f"one of {FEATURES}")
        max_rows = own["max_rows"]
        if max_rows is not None and (isinstance(max_rows, bool)
                                     or not isinstance(max_rows, int) or max_rows < 2):
            raise ValueError(f"config key attack.{NAME}.max_rows: {max_rows!r} is not an "
                             "integer >= 2 (or null)")
        params = {**MLP_DEFAULTS, **s}
        if isinstance(params.get("hidden_layer_sizes"), list):
            params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
        self.features, self.max_rows, self.seed = own["features"], max_rows, seed
        self.model = cls(**params, random_state=seed)
        from .classifiers import validate_estimator

        try:  # a bad value fails when the DAG is built, not in every attack job
            validate_estimator(self.model)
        except (TypeError, ValueError) as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
            raise ValueError(first) from None

    def training_set(self, data: AttackData) -> tuple[np.ndarray, np.ndarray]:
        return shadow_training_set(data, NAME, self.seed, self.max_rows,
                                   lambda t: attack_features(t, self.features))

    def fit_score(self, data: AttackData) -> AttackScores:
        from sklearn.exceptions import ConvergenceWarning

        x, y = self.training_set(data)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            self.model.fit(x, y)
        converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        shadow_acc = float((self.model.predict(x) == y).mean())
        score = self.model.predict_proba(attack_features(data.target, self.features))[:, 1]
        # scored where the reference attacks are (rows the inclusion design covers), so all
        # of them are judged on the same rows
        score = np.where(data.judged(), score, np.nan)
        info = {"converged": converged, "n_iter": int(self.model.n_iter_),
                "n_references": len(data.references), "shadow_rows": int(len(y)),
                "shadow_train_accuracy": shadow_acc}
        return AttackScores(score.astype(np.float64), self.threshold, info)


def shadow_training_set(data: AttackData, name: str, seed: int, max_rows: int | None,
                        featurize) -> tuple[np.ndarray, np.ndarray]:
    """The shadow attacks' training rows: every reference's rows of the attack sample, then
    of the population rows not among them, each labelled with the reference's inclusion
    (IN = 1), balanced by down-sampling the larger class (seeded) to at most ``max_rows``;
    ``featurize(table) -> (rows, F)`` turns the kept rows' confidence table (read back one
    reference at a time: never K x n x C) into features. Returns (features, labels)."""
    inc = check_references(data, name)
    # blocks of rows: each reference on the sample's rows, then on the population rows
    # not already among them; (reference, its row positions, IN flags)
    blocks = [(r, np.arange(len(r)), inc[k]) for k, r in enumerate(data.references)]
    if data.population is not None and data.population_references:
        pop_in = np.asarray(data.population_in, dtype=bool)
        if pop_in.shape != (len(data.population_references), len(data.population)):
            raise ValueError(f"attack {name!r}: population_in does not match the "
                             "population references and rows")
        new = ~np.isin(data.population.sample_id, data.target.sample_id)  # not twice
        if new.any():
            blocks += [(r, np.flatnonzero(new), pop_in[k, new])
                       for k, r in enumerate(data.population_references)]
    y = np.concatenate([b[2] for b in blocks]).astype(int)
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError(f"attack {name!r}: the references need both IN and OUT rows")
    per_class = min(len(pos), len(neg))
    if max_rows is not None:
        per_class = min(per_class, max_rows // 2)
    keep = np.concatenate([rng.choice(pos, per_class, replace=False),
                           rng.choice(neg, per_class, replace=False)])
    keep = rng.permutation(keep)
    starts = np.cumsum([0] + [len(b[1]) for b in blocks])
    which = np.searchsorted(starts, keep, side="right") - 1
    x = None
    for b in np.unique(which):
        at = np.flatnonzero(which == b)
        ref, rows, _ = blocks[b]
        feats = featurize(ref.take(rows[keep[at] - starts[b]]))
        if x is None:
            x = np.empty((len(keep), feats.shape[1]), dtype=feats.dtype)
        x[at] = feats
    return x, y[keep]


@register_attack(NAME, kind="reference", needs_references=True,
                 defaults={**MLP_DEFAULTS, **OWN_DEFAULTS},
                 description="Shadow-model MLP (Shokri et al. 2017) trained on the reference "
                             "models' IN/OUT confidence vectors")
def shadow_mlp(settings: dict | None, seed: int) -> ShadowMLP:
    return ShadowMLP(settings, seed)
