"""Classifier attacks: a scikit-learn model fit on attack-train feature vectors.

``mlp`` is the paper's attack (an MLP on the softmax vector). The paper's Section 4 compares
it with an SVM and a random forest; logistic regression and gradient boosting complete the
set. Each reads its settings from ``attack.<name>`` in the config (any constructor argument
of its estimator; an unknown one is a DAG-build error naming the key). The score is the
predicted probability of "member" with the decision threshold 0.5, except for the SVM, whose
score is its decision function with threshold 0: SVC's probabilities come from a Platt
scaling fitted by an internal cross-validation, which can contradict the SVM's own decisions
when the signal is weak (scikit-learn documents this).
"""

from __future__ import annotations

import importlib
import inspect
import warnings

import numpy as np

from .base import AttackData, AttackScores, register_attack

ESTIMATORS = {
    "mlp": ("sklearn.neural_network:MLPClassifier",
            {"hidden_layer_sizes": [64], "max_iter": 600}),
    "svm": ("sklearn.svm:SVC", {"C": 1.0, "kernel": "rbf"}),
    "random_forest": ("sklearn.ensemble:RandomForestClassifier",
                      {"n_estimators": 200, "min_samples_leaf": 2}),
    "logistic_regression": ("sklearn.linear_model:LogisticRegression", {"max_iter": 2000}),
    "gradient_boosting": ("sklearn.ensemble:GradientBoostingClassifier",
                          {"n_estimators": 100, "max_depth": 3}),
}


def estimator_class(path: str):
    module, cls = path.split(":")
    return getattr(importlib.import_module(module), cls)


# Constructor arguments every supported scikit-learn release accepts (a test checks them
# against the installed one): checking a config against these needs no scikit-learn import,
# which keeps building the DAG fast; anything else is checked against the real signature.
COMMON_SETTINGS = {
    "mlp": {"activation", "alpha", "batch_size", "beta_1", "beta_2", "early_stopping",
            "epsilon", "hidden_layer_sizes", "learning_rate", "learning_rate_init", "max_fun",
            "max_iter", "momentum", "n_iter_no_change", "nesterovs_momentum", "power_t",
            "shuffle", "solver", "tol", "validation_fraction", "verbose", "warm_start"},
    "svm": {"C", "break_ties", "cache_size", "class_weight", "coef0",
            "decision_function_shape", "degree", "gamma", "kernel", "max_iter", "probability",
            "shrinking", "tol", "verbose"},
    "random_forest": {"bootstrap", "ccp_alpha", "class_weight", "criterion", "max_depth",
                      "max_features", "max_leaf_nodes", "max_samples",
                      "min_impurity_decrease", "min_samples_leaf", "min_samples_split",
                      "min_weight_fraction_leaf", "n_estimators", "n_jobs", "oob_score",
                      "verbose", "warm_start"},
    "logistic_regression": {"C", "class_weight", "dual", "fit_intercept",
                            "intercept_scaling", "l1_ratio", "max_iter", "n_jobs", "penalty",
                            "solver", "tol", "verbose", "warm_start"},
    "gradient_boosting": {"ccp_alpha", "criterion", "init", "learning_rate", "loss",
                          "max_depth", "max_features", "max_leaf_nodes",
                          "min_impurity_decrease", "min_samples_leaf", "min_samples_split",
                          "min_weight_fraction_leaf", "n_estimators", "n_iter_no_change",
                          "subsample", "tol", "validation_fraction", "verbose", "warm_start"},
}


def estimator_settings(name: str) -> set[str]:
    """The constructor arguments of the installed estimator (random_state is ours)."""
    path, _ = ESTIMATORS[name]
    return set(inspect.signature(estimator_class(path)).parameters) - {"random_state"}


def check_settings(name: str, settings: dict | None) -> list[str]:
    """Problems with ``attack.<name>`` settings (empty when they are fine)."""
    path, _ = ESTIMATORS[name]
    if set(settings or {}) <= COMMON_SETTINGS.get(name, set()):
        return []
    import difflib

    allowed = estimator_settings(name)
    unknown = sorted(set(settings or {}) - allowed)
    if unknown:
        hints = [f"{u!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(
            u, sorted(allowed), n=1)) else repr(u) for u in unknown]
        return [f"config key 'attack.{name}': unknown {path.split(':')[1]} setting(s) "
                f"{', '.join(hints)}; allowed: {sorted(allowed)}"]
    return []


def value_problems(name: str, settings: dict | None) -> list[str]:
    """Problems with the values of ``attack.<name>``, found by scikit-learn's own parameter
    validation of the configured estimator (types and ranges: ``hidden_layer_sizes: "abc"``,
    ``C: -1``), so a bad value fails when the DAG is built, not inside every attack job."""
    path, defaults = ESTIMATORS[name]
    params = _fix_types({**defaults, **(settings or {})})
    try:
        est = estimator_class(path)(**params)
        est._validate_params()
    except (TypeError, ValueError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        return [f"config key 'attack.{name}': {first}"]
    return []


def cached_value_problems(name: str, settings: dict | None, cache_dir=None) -> list[str]:
    """:func:`value_problems`, remembered in ``cache_dir`` (a JSON file keyed by the
    estimator, its settings and the installed scikit-learn version): importing
    scikit-learn costs about a second, which every DAG build would pay."""
    import hashlib
    import json
    from importlib.metadata import version
    from pathlib import Path

    if cache_dir is None:
        return value_problems(name, settings)
    key = hashlib.sha256(json.dumps([name, settings, version("scikit-learn")], sort_keys=True,
                                    default=str).encode()).hexdigest()
    path = Path(cache_dir) / "attack-settings.json"
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    if key not in cache:
        cache[key] = value_problems(name, settings)
        try:
            from ..io import atomic_write_bytes

            atomic_write_bytes(json.dumps(cache).encode(), path)
        except OSError:  # a read-only working directory: check again next time
            pass
    return list(cache[key])


def _fix_types(params: dict) -> dict:
    params = dict(params)
    if isinstance(params.get("hidden_layer_sizes"), list):
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    return params


class ClassifierAttack:
    def __init__(self, name: str, settings: dict | None, seed: int):
        problems = check_settings(name, settings)
        if problems:
            raise ValueError(problems[0])
        path, defaults = ESTIMATORS[name]
        params = _fix_types({**defaults, **(settings or {})})
        cls = estimator_class(path)
        if "random_state" in inspect.signature(cls).parameters:
            params["random_state"] = seed
        self.name = name
        self.model = cls(**params)

    def fit(self, x: np.ndarray, y: np.ndarray) -> dict:
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            self.model.fit(x, y)
        converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        info = {"converged": converged}
        if hasattr(self.model, "n_iter_"):
            info["n_iter"] = int(np.max(self.model.n_iter_))
        return info

    @property
    def uses_decision_function(self) -> bool:
        return self.name == "svm"

    @property
    def threshold(self) -> float:
        return 0.0 if self.uses_decision_function else 0.5

    def score(self, x: np.ndarray) -> np.ndarray:
        if self.uses_decision_function:
            return self.model.decision_function(x).astype(np.float64)
        return self.model.predict_proba(x)[:, 1].astype(np.float64)

    def fit_score(self, data: AttackData) -> AttackScores:
        x = data.feature_matrix()
        y = data.is_member.astype(int)
        info = self.fit(x[data.train], y[data.train])
        s = self.score(x)
        info["train_accuracy"] = float(((s[data.train] >= self.threshold) == y[data.train])
                                       .mean())
        return AttackScores(s, self.threshold, info)


for _name, (_path, _defaults) in ESTIMATORS.items():
    register_attack(_name, kind="classifier", estimator=_path, defaults=_defaults,
                    description=f"{_path.split(':')[1]} on the attack features")(
        lambda settings, seed, _n=_name: ClassifierAttack(_n, settings, seed))
