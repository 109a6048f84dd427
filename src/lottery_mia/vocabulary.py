"""The words of the result tables, in one place: model keys, kinds, columns, and how a number
with its interval is written.

Every summary and report table keys a model by (dataset, arch, method, sparsity): ``method``
is ``dense`` for the dense network (sparsity 0), a ticket-finding method (``oneshot``,
``imp``) or a control (``random_reinit``, ``random_mask``, ``snip``, ``grasp``); ``sparsity``
is the requested sparsity and ``achieved_sparsity`` what the mask really removes (an IMP
round serving s can prune more). Pure standard library.
"""

from __future__ import annotations

import math

DENSE = "dense"
# The feature vectors a classifier attack learns from (attack.features; the paper: softmax).
FEATURES = ("softmax", "sorted", "softmax_label", "log_softmax")
KINDS = (DENSE, "ticket", "control")

MODEL_KEYS = ["dataset", "arch", "method", "sparsity"]
ATTACK_KEYS = ["dataset", "arch", "method", "sparsity", "replicate", "sample_size", "attack"]
MEAN = "mean"  # the replicate of the rows averaged over seeds

# The rows of a model's scores table (attack-n<N>/scores.parquet): the attack sample's two
# folds and, for a model with reference attacks, every other scored row of the target.
FOLDS = ("attack_train", "attack_test", "outside")
REFERENCE = "reference"  # the kind of attack that learns nothing from the target's members
# what reference attacks also report on the classifier attacks' rows (``same_rows_<metric>``)
SAME_ROWS_METRICS = ("accuracy", "auc", "tpr_at_fpr_0.1")


def evaluated(fold, kind: str, score=None):
    """The rows an attack is evaluated on (a boolean array of ``fold``'s shape): the
    attack-test rows for classifier and threshold attacks (they learn from attack-train
    rows); for reference attacks, every row the references can judge (some reference
    trained on it and some did not: their scores are finite, the others nan) outside the
    attack-train fold, where their threshold is placed. A reference attack's ``score`` must
    be given: a row outside the references' inclusion design is never evaluated (whether a
    row is in the references' pool is itself membership when every member is)."""
    if kind == REFERENCE:
        if score is None:
            raise ValueError("the rows a reference attack is evaluated on depend on its "
                             "scores (nan outside the references' inclusion design)")
        return (fold != "attack_train") & (score == score)  # score == score: not nan
    return fold == "attack_test"


# The columns a table must have to be read back (readers name what is missing).
TRAINING_COLUMNS = MODEL_KEYS + ["achieved_sparsity", "method_kind", "replicate", "test_acc",
                                 "train_acc"]
ATTACK_COLUMNS = ATTACK_KEYS + ["achieved_sparsity", "kind", "threshold", "accuracy", "auc"]
TRANSFER_COLUMNS = ["source_arch", "source_method", "source_sparsity", "target_arch",
                    "target_method", "target_sparsity", "accuracy"]


def network_identity(dataset: str, arch: str, seed: int, method: str, sparsity: float,
                     imp_round: int | None = None) -> dict:
    """Which network a checkpoint holds: the record its training job writes and the
    scoring job expects (the plan's and the training job's one definition)."""
    return {"dataset": dataset, "arch": arch, "seed": int(seed), "method": method,
            "sparsity": float(sparsity), "imp_round": imp_round}


def fit_text(row: dict) -> str:
    """What a classifier attack fitted, as its result row records it: 'SVC',
    'Nystroem(rbf, 1000 components)+LinearSVC', 'MLPClassifier, early stopping'; '' for an
    attack that fits no estimator (a threshold or reference attack)."""
    est = row.get("estimator")
    if not isinstance(est, str) or not est:
        return ""
    text = est + (", early stopping" if row.get("early_stopping") is True else "")
    return text + (", not converged" if row.get("converged") is False else "")


def model_name(arch: str, method: str, sparsity: float) -> str:
    """'resnet18 imp s=0.8'; the dense network is 'resnet18 dense'."""
    if method == DENSE:
        return f"{arch} dense"
    return f"{arch} {method} s={float(sparsity):g}"


def fmt_ci(value: float, low: float, high: float, digits: int = 3) -> str:
    """'0.574 [0.565, 0.584]' (a nan interval prints as the value alone)."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"
