"""Membership-inference attacks on confidence vectors, as in the paper, plus metric baselines.

Attack samples. For a dataset and a sample size n, :func:`make_attack_sample` draws n/2
scored members and n/2 non-members from the membership table (seeded), and splits each half
into disjoint ``attack_train`` and ``attack_test`` folds, so both folds are balanced. The
sample depends on the dataset, n and the seed only, never on a model: every model of the
dataset is attacked on the same samples, and a transferred attack never scores a sample it
was trained on.

Attacks. The paper's attack is scikit-learn's ``MLPClassifier`` fit on the confidence vectors
P(y|x) of attack_train and evaluated on attack_test. Beside it, threshold attacks on simple
metrics (loss as in Yeom et al., top confidence, entropy, modified entropy of Song & Mittal)
are fit on the same folds as baselines: each threshold is chosen on attack_train only.
"""

from __future__ import annotations

import inspect
import pickle
from pathlib import Path

import numpy as np
import pandas as pd

from .confidences import ConfidenceTable, read_confidences
from .io import log, write_json
from .metrics import attack_metrics, best_threshold

FEATURES = ("softmax", "sorted", "softmax_label")
FOLDS = ("attack_train", "attack_test")


# --------------------------------------------------------------------------- attack samples
def make_attack_sample(membership: pd.DataFrame, n: int, seed: int,
                       test_fraction: float = 0.5) -> pd.DataFrame:
    """n balanced samples (n/2 members, n/2 non-members), split into two disjoint folds."""
    if n <= 0 or n % 2:
        raise ValueError(f"attack sample size {n} must be a positive even number")
    scored = membership[membership["scored"]]
    members = scored.loc[scored["member"], "sample_id"].to_numpy()
    nonmembers = scored.loc[~scored["member"], "sample_id"].to_numpy()
    half = n // 2
    if half > len(members) or half > len(nonmembers):
        raise ValueError(
            f"attack sample size {n} needs {half} members and {half} non-members, but the "
            f"membership table has {len(members)} scored members and {len(nonmembers)} "
            f"non-members; lower attack.sample_sizes (at most {2 * min(len(members), len(nonmembers))})"
        )
    rng = np.random.default_rng(seed)
    n_test = int(round(half * test_fraction))
    if not 0 < n_test < half:
        raise ValueError(f"attack sample size {n} is too small to split into attack-train "
                         f"and attack-test halves")
    frames = []
    for is_member, pool in ((True, members), (False, nonmembers)):
        chosen = rng.choice(pool, size=half, replace=False)
        fold = np.array(["attack_train"] * (half - n_test) + ["attack_test"] * n_test)
        frames.append(pd.DataFrame({"sample_id": chosen.astype(np.int64), "member": is_member,
                                    "fold": fold}))
    sample = pd.concat(frames, ignore_index=True)
    validate_attack_sample(sample)
    return sample


def validate_attack_sample(sample: pd.DataFrame) -> None:
    if sample["sample_id"].duplicated().any():
        raise ValueError("attack sample: a sample appears twice (folds must be disjoint)")
    for fold in FOLDS:
        part = sample[sample["fold"] == fold]
        if len(part) == 0 or part["member"].sum() * 2 != len(part):
            raise ValueError(f"attack sample: fold {fold} is empty or unbalanced")


def build_attack_sample(*, membership_path, n: int, seed: int, test_fraction: float,
                        output) -> pd.DataFrame:
    from .membership import read_membership

    sample = make_attack_sample(read_membership(membership_path), n, seed, test_fraction)
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    sample.to_parquet(output, index=False)
    log(f"attack sample n={n}: {int((sample.fold == 'attack_train').sum())} attack-train, "
        f"{int((sample.fold == 'attack_test').sum())} attack-test rows -> {output}")
    return sample


def read_attack_sample(path) -> pd.DataFrame:
    sample = pd.read_parquet(path)
    validate_attack_sample(sample)
    return sample


# --------------------------------------------------------------------------- features
def attack_features(t: ConfidenceTable, kind: str) -> np.ndarray:
    if kind == "softmax":
        return t.softmax.astype(np.float32)
    if kind == "sorted":
        return -np.sort(-t.softmax, axis=1).astype(np.float32)
    if kind == "softmax_label":
        onehot = np.zeros_like(t.softmax, dtype=np.float32)
        onehot[np.arange(len(t)), t.label] = 1.0
        return np.hstack([t.softmax, onehot]).astype(np.float32)
    raise ValueError(f"config key attack.features: {kind!r} is not one of {FEATURES}")


def metric_scores(t: ConfidenceTable) -> dict[str, np.ndarray]:
    """Scores for the threshold baselines; higher means "more likely a member"."""
    p = np.clip(t.softmax.astype(np.float64), 1e-12, 1.0)
    idx = np.arange(len(t))
    p_y = p[idx, t.label]
    entropy = -(p * np.log(p)).sum(1)
    log_1mp = np.log(np.clip(1.0 - p, 1e-12, 1.0))
    # modified entropy: -(1 - p_y) log p_y - sum_{i != y} p_i log(1 - p_i)
    m_ent = -(1.0 - p_y) * np.log(p_y) - ((p * log_1mp).sum(1) - p_y * log_1mp[idx, t.label])
    return {
        "loss": -t.loss.astype(np.float64),
        "confidence": p.max(1),
        "entropy": -entropy,
        "modified_entropy": -m_ent,
    }


# --------------------------------------------------------------------------- MLP attack
def _mlp(params: dict, seed: int):
    from sklearn.neural_network import MLPClassifier

    allowed = set(inspect.signature(MLPClassifier).parameters) - {"random_state"}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValueError(f"config key attack.mlp: unknown MLPClassifier setting(s) {unknown}")
    params = dict(params)
    if "hidden_layer_sizes" in params:
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    return MLPClassifier(random_state=seed, **params)


def fit_attack(*, confidences_path, sample_path, mlp: dict, features: str, seed: int,
               out_model, out_metrics, out_scores) -> dict:
    """Fit the MLP attack on attack_train, evaluate it (and the baselines) on attack_test."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    conf = read_confidences(confidences_path)
    sample = read_attack_sample(sample_path)
    rows = conf.rows(sample["sample_id"].to_numpy())
    if not np.array_equal(rows.member, sample["member"].to_numpy()):
        raise ValueError(f"{confidences_path} and {sample_path} disagree on membership")
    x = attack_features(rows, features)
    y = rows.member.astype(int)
    train = (sample["fold"] == "attack_train").to_numpy()
    test = ~train
    clf = _mlp(mlp, seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(x[train], y[train])
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    score = clf.predict_proba(x)[:, 1]
    metrics = attack_metrics(y[test], score[test])
    metrics["train_accuracy"] = float(((score[train] >= 0.5) == y[train]).mean())
    metrics["converged"] = converged
    metrics["n_iter"] = int(clf.n_iter_)
    baselines = {}
    for name, s in metric_scores(rows).items():
        thr = best_threshold(y[train], s[train])
        baselines[name] = attack_metrics(y[test], s[test], threshold=thr)
        baselines[name]["threshold"] = thr
    meta = conf.metadata
    result = {"dataset": meta.get("dataset"), "arch": meta.get("arch"),
              "sparsity": meta.get("sparsity"), "sample_size": int(len(sample)),
              "features": features, "mlp": mlp, "seed": seed,
              "attack": "mlp", **metrics, "baselines": baselines}
    Path(out_model).parent.mkdir(parents=True, exist_ok=True)
    with open(out_model, "wb") as fh:
        pickle.dump({"classifier": clf, "features": features, "source": meta}, fh)
    pd.DataFrame({"sample_id": rows.sample_id, "member": rows.member,
                  "fold": sample["fold"].to_numpy(), "score": score}).to_parquet(out_scores,
                                                                                 index=False)
    write_json(result, out_metrics)
    log(f"MLP attack on {meta.get('arch')} sparsity {meta.get('sparsity')} n={len(sample)}: "
        f"accuracy {metrics['accuracy']:.4f} precision {metrics['precision']:.4f} "
        f"auc {metrics['auc']:.4f} (attack-train accuracy {metrics['train_accuracy']:.4f}"
        f"{'' if converged else ', did not converge: raise attack.mlp.max_iter'})")
    return result


def transfer_attack(*, attack_model_path, sample_path, targets: list[dict], target_paths: list,
                    output) -> pd.DataFrame:
    """Evaluate one source model's attack on every target model's attack_test confidences.

    ``targets``: dicts with ``arch`` and ``sparsity``; ``target_paths``: their confidence
    tables, in the same order.
    """
    with open(attack_model_path, "rb") as fh:
        saved = pickle.load(fh)
    clf, features, source = saved["classifier"], saved["features"], saved["source"]
    sample = read_attack_sample(sample_path)
    test = sample[sample["fold"] == "attack_test"]
    out = []
    for target, path in zip(targets, target_paths, strict=True):
        conf = read_confidences(path).rows(test["sample_id"].to_numpy())
        score = clf.predict_proba(attack_features(conf, features))[:, 1]
        m = attack_metrics(conf.member, score)
        out.append({"source_arch": source.get("arch"), "source_sparsity": source.get("sparsity"),
                    "target_arch": target["arch"], "target_sparsity": float(target["sparsity"]),
                    **m})
        log(f"transfer {source.get('arch')}@{source.get('sparsity')} -> "
            f"{target['arch']}@{target['sparsity']}: accuracy {m['accuracy']:.4f}")
    frame = pd.DataFrame(out)
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(output, index=False)
    return frame
