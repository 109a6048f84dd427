"""What every attack kind shares: its input, its output, and the registry.

An attack kind is a name -> one class with one signature::

    @register_attack("name", kind="threshold" | "classifier" | ...)
    class MyAttack:
        def __init__(self, settings: dict, seed: int): ...
        def fit_score(self, data: AttackData) -> AttackScores: ...

``AttackData`` carries the target model's confidence rows for the attack sample, the fold of
each row and (for attacks that need them, later) the reference models' scores and the
inclusion table; ``AttackScores`` carries one membership score per row (higher: more likely
a member) and the decision threshold chosen on attack-train rows only. Metrics, intervals,
paths and summaries are keyed by the registered name, so the next attack is one new module
in this package (every module here is imported by the package, so registering is enough).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..confidences import ConfidenceTable
from ..registry import Registry
from ..vocabulary import FEATURES, evaluated

if TYPE_CHECKING:  # pandas is only needed when an attack runs
    import pandas as pd



@dataclass
class AttackData:
    """The rows an attack sees: the target's confidences, aligned with the attack sample."""

    target: ConfidenceTable  # rows in the order of ``sample``
    sample: pd.DataFrame  # sample_id, label, member, fold
    features: str = "softmax"
    # Reference-model attacks (needs_references=True): K reference models trained on seeded
    # halves of the population pool. ``references[k]`` holds reference k's confidence rows
    # aligned with ``sample`` (same sample_id order); ``reference_in[k, i]`` is True when
    # reference k was trained on row i (from the inclusion table). ``population`` holds the
    # target's rows on population samples z (every scored target non-member), and
    # ``population_references[k]`` reference k's rows on the same z, with
    # ``population_in[k, j]`` its inclusion. The target's ``member`` column is never read by
    # these attacks except on attack-train rows, to choose a threshold.
    references: list[ConfidenceTable] | None = None
    reference_in: np.ndarray | None = None  # (K, n_rows) bool
    population: ConfidenceTable | None = None
    population_references: list[ConfidenceTable] | None = None
    population_in: np.ndarray | None = None  # (K, n_population) bool
    # Pair attacks (needs_parent=True: the adversary queries a pruned network and its dense
    # parent): ``parent`` holds the dense parent's confidence rows aligned with ``sample``,
    # and ``parent_references[k]`` reference k's own dense parent's rows (aligned like
    # ``references[k]``; the reference ticket was pruned from it and retrained on the same
    # half, so ``reference_in`` holds for both).
    parent: ConfidenceTable | None = None
    parent_references: list | None = None
    # Attacks that read the inputs (needs_inputs=True: the quantile attack): a model-free
    # description of each row's input, (n_rows, F) float32 aligned with ``sample``.
    inputs: np.ndarray | None = None

    @property
    def is_member(self) -> np.ndarray:
        return self.sample["member"].to_numpy().astype(bool)

    @property
    def train(self) -> np.ndarray:
        return (self.sample["fold"] == "attack_train").to_numpy()

    @property
    def test(self) -> np.ndarray:
        return (self.sample["fold"] == "attack_test").to_numpy()

    def evaluated(self, kind: str, score: np.ndarray | None = None) -> np.ndarray:
        """The rows an attack of ``kind`` is evaluated on (:func:`vocabulary.evaluated`;
        a reference attack's ``score`` is nan on the rows its references cannot judge)."""
        return evaluated(self.sample["fold"].to_numpy(), kind, score)

    def judged(self) -> np.ndarray:
        """(n_rows,) bool: the rows the references' inclusion design covers, IN for some
        reference and OUT for another (Carlini et al.: every pool row is IN for exactly
        half). Only these rows are scored by a reference attack: a row no reference trained
        on has no IN statistics, and filling them in makes "is this row in the pool" a
        membership signal whenever every member is in the pool."""
        inc = np.asarray(self.reference_in, dtype=bool)
        return inc.any(0) & ~inc.all(0)

    def feature_matrix(self, table: ConfidenceTable | None = None) -> np.ndarray:
        return attack_features(self.target if table is None else table, self.features)


@dataclass
class AttackScores:
    """One attack's output: a score for every row of the sample, and its threshold."""

    score: np.ndarray  # (n_rows,), higher = more likely a member
    threshold: float  # decision: member if score >= threshold (chosen on attack-train)
    info: dict = field(default_factory=dict)  # e.g. attack-train accuracy, convergence


def attack_features(t: ConfidenceTable, kind: str) -> np.ndarray:
    """The feature vectors a classifier attack learns from (the paper: the softmax)."""
    if kind == "softmax":
        return t.softmax.astype(np.float32)
    if kind == "sorted":
        return -np.sort(-t.softmax, axis=1).astype(np.float32)
    if kind == "softmax_label":
        onehot = np.zeros_like(t.softmax, dtype=np.float32)
        onehot[np.arange(len(t)), t.label] = 1.0
        return np.hstack([t.softmax, onehot]).astype(np.float32)
    if kind == "log_softmax":
        return np.maximum(t.log_probs, -50.0).astype(np.float32)
    raise ValueError(f"config key attack.features: {kind!r} is not one of {FEATURES}")


@dataclass(frozen=True)
class AttackKind:
    name: str
    kind: str
    factory: Callable  # (settings, seed) -> object with fit_score(AttackData)
    description: str
    # for classifier attacks: "module:Class" of the scikit-learn estimator, so settings can
    # be checked at DAG-build time without importing every estimator
    estimator: str | None = None
    defaults: dict = field(default_factory=dict)
    needs_references: bool = False  # True: AttackData.references etc. must be given
    # (settings, number of references) -> why the attack cannot run with them, or None: the
    # attack's own constraints, asked by the config check and the audit alike
    references_problem: Callable | None = None
    # True: a pair attack, on a pruned network and its dense parent (AttackData.parent; and
    # parent_references when it also needs references); never run on a dense network
    needs_parent: bool = False
    # a pair attack: the single-network attack it extends (the report compares the pair
    # with the stronger of the dense network and the ticket under that attack)
    extends: str | None = None
    # True: reads AttackData.inputs and the target's rows outside the attack sample
    needs_inputs: bool = False
    # True: reads the confidence tables' sensitivity column (confidences.sensitivity), on
    # the target and its references
    needs_sensitivity: bool = False

    def cannot_run(self, settings: dict | None, n_references: int,
                   with_parent: bool = True, with_inputs: bool = True,
                   with_sensitivity: bool = True) -> str | None:
        """Why this attack cannot run with ``settings``, ``n_references`` references,
        (``with_parent``) the target's dense parent, (``with_inputs``) the rows' input
        features and (``with_sensitivity``) the tables' sensitivity column."""
        if self.needs_parent and not with_parent:
            return ("needs the dense parent of the pruned target (a pair attack compares "
                    "the two networks' confidences on each row)")
        if self.needs_inputs and not with_inputs:
            return ("needs the inputs of the rows (the pipeline's input_features job) and "
                    "public non-members outside the attack sample")
        if self.needs_sensitivity and not with_sensitivity:
            return ("needs each row's sensitivity to input noise in the target's and the "
                    "references' tables (the pipeline's scoring job: confidences.sensitivity)")
        if self.needs_references and not n_references:
            return "needs reference models (references)"
        return self.references_problem(settings, n_references) \
            if self.references_problem else None


ATTACKS: Registry[AttackKind] = Registry("attack", "attack.models")


def register_attack(name: str, *, kind: str, description: str, estimator: str | None = None,
                    defaults: dict | None = None, needs_references: bool = False,
                    references_problem: Callable | None = None, needs_parent: bool = False,
                    extends: str | None = None, needs_inputs: bool = False,
                    needs_sensitivity: bool = False):
    def deco(factory):
        ATTACKS.register(name, AttackKind(name, kind, factory, description, estimator,
                                          dict(defaults or {}), needs_references,
                                          references_problem, needs_parent, extends,
                                          needs_inputs, needs_sensitivity))
        return factory
    return deco


def get_attack(name: str, key: str | None = None) -> AttackKind:
    """The attack called ``name`` (a ValueError naming the config key ``key`` and the
    closest registered name otherwise)."""
    return ATTACKS.get_entry(name, key)
