"""Classifier attacks: a scikit-learn model fit on attack-train feature vectors.

``mlp`` is the paper's attack (an MLP on the softmax vector). The paper's Section 4 compares
it with an SVM and a random forest; logistic regression and gradient boosting complete the
set. Each reads its settings from ``attack.<name>`` in the config (any constructor argument
of its estimator; an unknown one is a DAG-build error naming the key). The score is the
predicted probability of "member" with the decision threshold 0.5, except for the SVM, whose
score is its decision function with threshold 0: SVC's probabilities come from a Platt
scaling fitted by an internal cross-validation, which can contradict the SVM's own decisions
when the signal is weak (scikit-learn documents this).

Costs at the paper's sizes (``benchmarks/attack_scaling.py`` measures them):

- ``svm``: an exact kernel SVM (``SVC``) costs ~n^2 to fit and n_support x n to score (5000
  attack-train rows of 1000-class softmax vectors: about a minute; 10000: five). Above
  ``exact_max_rows`` attack-train rows (this attack's own setting, default 5000; null: always
  exact) it fits an approximation instead: a Nystroem approximation of the same kernel
  (``kernel``, ``gamma`` resolved as SVC resolves it on the attack-train rows, ``degree``,
  ``coef0``) with ``approx_components`` landmark rows (default 1000; seeded), then a linear
  SVM with SVC's loss (hinge), ``C``, ``class_weight`` and ``tol``
  (``LinearSVC(dual=True)``; ``max_iter`` -1 becomes 10000); a linear kernel needs no
  approximation and goes to ``LinearSVC`` directly. SVC-only settings (``cache_size``,
  ``shrinking``, ``probability``, ``break_ties``, ``decision_function_shape``) do not apply
  to it. Every classifier attack records what it fitted in its result: ``estimator`` (e.g.
  ``SVC`` or ``Nystroem+LinearSVC``) and ``exact`` (false for the approximation);
- ``gradient_boosting``: scikit-learn's histogram-based ``HistGradientBoostingClassifier``
  (features binned once into at most 255 bins: ~n x features per iteration), with its own
  early stopping (``early_stopping: auto``: on above 10000 rows, on a 10% validation split);
- ``mlp``: ``early_stopping: true`` by default: 10% of the attack-train rows (stratified,
  ``validation_fraction``) are held out and training stops when their accuracy has not
  improved by ``tol`` for ``early_stopping_patience`` epochs (this attack's own setting,
  default 30; it is ``n_iter_no_change`` while early stopping is on, which otherwise keeps
  scikit-learn's meaning and default, 10: the training-loss plateau);
  the result records ``early_stopping`` (whether it was used) and the best
  ``validation_score``. With fewer attack-train rows than ``early_stopping_min_rows`` (this
  attack's own setting, default 5000; null: any size) it trains without early stopping,
  exactly as with ``early_stopping: false`` (to ``max_iter``, or until the training loss
  stops improving for ``n_iter_no_change`` epochs): there a validation split
  is a few dozen rows and an epoch a few steps, and accuracy-based stopping ends at chance
  before the MLP has learnt (1000 rows of 10-class vectors: AUC 0.50 instead of 0.69 with
  patience 10 or 30). At 5000-10000 rows a patience of 30 epochs keeps the AUC within 0.01
  of training to max_iter, where 10 lost up to 0.03.
"""

from __future__ import annotations

import importlib
import inspect
import warnings

import numpy as np

from .base import AttackData, AttackScores, register_attack

ESTIMATORS = {
    "mlp": ("sklearn.neural_network:MLPClassifier",
            {"hidden_layer_sizes": [64], "max_iter": 600, "early_stopping": True}),
    "svm": ("sklearn.svm:SVC", {"C": 1.0, "kernel": "rbf"}),
    "random_forest": ("sklearn.ensemble:RandomForestClassifier",
                      {"n_estimators": 200, "min_samples_leaf": 2}),
    "logistic_regression": ("sklearn.linear_model:LogisticRegression", {"max_iter": 2000}),
    "gradient_boosting": ("sklearn.ensemble:HistGradientBoostingClassifier",
                          {"max_iter": 100, "max_depth": 3}),
    # the pair attack's classifier (:mod:`.pair`): the paper's MLP on the pruned network's
    # and its dense parent's features side by side
    "pair_mlp": ("sklearn.neural_network:MLPClassifier",
                 {"hidden_layer_sizes": [64], "max_iter": 600, "early_stopping": True}),
}
# Attacks whose estimator is an MLP with this module's early-stopping rules.
MLPS = ("mlp", "pair_mlp")

# Settings of an attack that are not its estimator's (name -> default), checked here.
OWN_SETTINGS = {
    "svm": {"exact_max_rows": 5000, "approx_components": 1000},
    "mlp": {"early_stopping_min_rows": 5000, "early_stopping_patience": 30},
    "pair_mlp": {"early_stopping_min_rows": 5000, "early_stopping_patience": 30},
}
NULLABLE = {"exact_max_rows": "always exact", "early_stopping_min_rows": "any size"}
# Settings the estimators of earlier versions took under another name (for the error).
RENAMED = {"gradient_boosting": {"n_estimators": "max_iter"}}
APPROX_MAX_ITER = 10000  # LinearSVC iterations of the approximate SVM when max_iter is -1


def own_value_problems(name: str, settings: dict | None) -> list[str]:
    """Problems with the values of an attack's own (non-scikit-learn) settings."""
    problems = []
    for key, value in (settings or {}).items():
        if key not in OWN_SETTINGS.get(name, {}):
            continue
        ok = (value is None and key in NULLABLE) or (
            isinstance(value, int) and not isinstance(value, bool) and value >= 1)
        if not ok:
            problems.append(f"config key 'attack.{name}.{key}': {value!r} is not an integer "
                            ">= 1" + (f" (or null: {NULLABLE[key]})" if key in NULLABLE
                                      else ""))
    return problems


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
    "gradient_boosting": {"categorical_features", "class_weight", "early_stopping",
                          "interaction_cst", "l2_regularization", "learning_rate", "loss",
                          "max_bins", "max_depth", "max_iter", "max_leaf_nodes",
                          "min_samples_leaf", "monotonic_cst", "n_iter_no_change", "scoring",
                          "tol", "validation_fraction", "verbose", "warm_start"},
}
COMMON_SETTINGS["pair_mlp"] = COMMON_SETTINGS["mlp"]


def estimator_settings(name: str) -> set[str]:
    """The constructor arguments of the installed estimator (random_state is ours)."""
    path, _ = ESTIMATORS[name]
    return set(inspect.signature(estimator_class(path)).parameters) - {"random_state"}


def check_settings(name: str, settings: dict | None) -> list[str]:
    """Problems with ``attack.<name>`` settings (empty when they are fine)."""
    path, _ = ESTIMATORS[name]
    own = set(OWN_SETTINGS.get(name, {}))
    if set(settings or {}) <= COMMON_SETTINGS.get(name, set()) | own:
        return []
    import difflib

    allowed = estimator_settings(name) | own
    unknown = sorted(set(settings or {}) - allowed)
    if unknown:
        renamed = RENAMED.get(name, {})
        hints = [f"{u!r} (now {renamed[u]!r})" if u in renamed
                 else f"{u!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(
                     u, sorted(allowed), n=1)) else repr(u) for u in unknown]
        return [f"config key 'attack.{name}': unknown {path.split(':')[1]} setting(s) "
                f"{', '.join(hints)}; allowed: {sorted(allowed)}"]
    return []


def value_problems(name: str, settings: dict | None) -> list[str]:
    """Problems with the values of ``attack.<name>``, found by scikit-learn's own parameter
    validation of the configured estimator (types and ranges: ``hidden_layer_sizes: "abc"``,
    ``C: -1``), so a bad value fails when the DAG is built, not inside every attack job."""
    path, defaults = ESTIMATORS[name]
    own = own_value_problems(name, settings)
    if own:
        return own
    params = _fix_types({k: v for k, v in {**defaults, **(settings or {})}.items()
                         if k not in OWN_SETTINGS.get(name, {})})
    try:
        est = estimator_class(path)(**params)
        validate_estimator(est)
    except (TypeError, ValueError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        return [f"config key 'attack.{name}': {first}"]
    return []


CHECKS_VERSION = 2  # part of the cache key: raise it when validate_estimator checks more


def validate_estimator(est) -> None:
    """scikit-learn's own parameter validation of ``est``, plus the checks it defers to
    ``fit`` (a ValueError naming the parameter): every hidden layer of an MLP has at least
    one unit."""
    est._validate_params()
    sizes = getattr(est, "hidden_layer_sizes", None)
    if sizes is not None:
        sizes = [sizes] if not hasattr(sizes, "__iter__") else list(sizes)
        if any(isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1
               for h in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive integers (units per "
                             f"hidden layer), got {sizes}")


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
    key = hashlib.sha256(json.dumps([name, ESTIMATORS[name][0], settings,
                                     version("scikit-learn"), CHECKS_VERSION], sort_keys=True,
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
        problems = check_settings(name, settings) or own_value_problems(name, settings)
        if problems:
            raise ValueError(problems[0])
        path, defaults = ESTIMATORS[name]
        merged = {**defaults, **(settings or {})}
        self.own = {k: merged.pop(k, v) for k, v in OWN_SETTINGS.get(name, {}).items()}
        params = _fix_types(merged)
        cls = estimator_class(path)
        if "random_state" in inspect.signature(cls).parameters:
            params["random_state"] = seed
        self.name, self.params, self.seed = name, params, seed
        self.model = cls(**params)
        self.estimator, self.exact = cls.__name__, True

    def _approximate(self, x: np.ndarray) -> None:
        """Above ``exact_max_rows``: the SVM as a Nystroem kernel approximation and a linear
        SVM with SVC's loss and settings (see the module doc)."""
        from sklearn.kernel_approximation import Nystroem
        from sklearn.pipeline import make_pipeline
        from sklearn.svm import LinearSVC

        p = self.params
        max_iter = p.get("max_iter", -1)
        linear = LinearSVC(C=p.get("C", 1.0), loss="hinge", dual=True,
                           class_weight=p.get("class_weight"), tol=p.get("tol", 1e-3),
                           max_iter=APPROX_MAX_ITER if max_iter in (-1, None) else max_iter,
                           random_state=self.seed)
        kernel = p.get("kernel", "rbf")
        if kernel == "linear":
            self.model, self.estimator = linear, "LinearSVC"
        else:
            gamma = p.get("gamma", "scale")
            if gamma == "scale":  # as SVC resolves it, on the rows it is fitted on
                var = float(np.asarray(x, dtype=np.float64).var())
                gamma = 1.0 / (x.shape[1] * var) if var > 0 else 1.0
            elif gamma == "auto":
                gamma = 1.0 / x.shape[1]
            comps = min(int(self.own["approx_components"]), len(x))
            nystroem = Nystroem(kernel=kernel, gamma=gamma, degree=p.get("degree", 3),
                                coef0=p.get("coef0", 0.0), n_components=comps,
                                random_state=self.seed)
            self.model = make_pipeline(nystroem, linear)
            self.estimator = f"Nystroem({kernel}, {comps} components)+LinearSVC"
        self.exact = False

    def fit(self, x: np.ndarray, y: np.ndarray) -> dict:
        from sklearn.exceptions import ConvergenceWarning

        cap = self.own.get("exact_max_rows")
        if self.name == "svm" and cap is not None and len(x) > cap:
            self._approximate(x)
        least = self.own.get("early_stopping_min_rows")
        if self.name in MLPS and least is not None and len(x) < least:
            self.model.set_params(early_stopping=False)
        if self.name in MLPS and self.model.early_stopping:  # patience on validation
            self.model.set_params(n_iter_no_change=int(self.own["early_stopping_patience"]))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            self.model.fit(x, y)
        converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        info = {"converged": converged, "estimator": self.estimator, "exact": self.exact,
                "fit_rows": int(len(x))}
        last = self.model[-1] if hasattr(self.model, "steps") else self.model
        if hasattr(last, "n_iter_"):
            info["n_iter"] = int(np.max(last.n_iter_))
        if self.name in MLPS:
            info["early_stopping"] = bool(last.early_stopping)
            if last.early_stopping:
                info["validation_score"] = float(last.best_validation_score_)
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

    def features(self, data: AttackData) -> np.ndarray:
        """The feature vector of every row (the target's attack features)."""
        return data.feature_matrix()

    def fit_score(self, data: AttackData) -> AttackScores:
        x = self.features(data)
        y = data.is_member.astype(int)
        info = self.fit(x[data.train], y[data.train])
        s = self.score(x)
        info["train_accuracy"] = float(((s[data.train] >= self.threshold) == y[data.train])
                                       .mean())
        return AttackScores(s, self.threshold, info)


for _name, (_path, _defaults) in ESTIMATORS.items():
    if _name == "pair_mlp":  # registered by .pair, on two networks' features
        continue
    register_attack(_name, kind="classifier", estimator=_path,
                    defaults={**_defaults, **OWN_SETTINGS.get(_name, {})},
                    description=f"{_path.split(':')[1]} on the attack features")(
        lambda settings, seed, _n=_name: ClassifierAttack(_n, settings, seed))
