"""SAMIA (Yuan & Zhang, "Membership Inference Attacks and Defenses in Neural Network
Pruning", USENIX Security 2022): the self-attention attack on pruned networks, with the
reference models as its shadow models.

Each row becomes a sequence of tokens, one per class c: (p_c, s_c, [c = y]), the softmax
probability, its sensitivity to input noise (the confidence table's ``sensitivity`` column:
the mean of |softmax(x + eps u)_c - softmax(x)_c| / eps over ``confidences.sensitivity.draws``
Gaussian draws u, eps = 1e-3 by default, scored by the scoring job only where SAMIA runs) and
whether c is the true class. The classifier is the paper's: BatchNorm over the 3L inputs,
Linear(3, 64) + GELU per token, 3 transformer encoder layers (4 heads, feed-forward 128,
dropout 0.2, GELU), the L token outputs flattened -> 64 -> ReLU -> 2. It learns IN vs OUT
from the references' rows: each reference of a ticket is a ticket itself (its own dense run
-> its own mask at the target's method and sparsity -> rewind -> retrain), so the shadows
are pruned like the target, as the paper requires. The rows are sampled as the shadow MLP
samples them (:func:`.shadow.shadow_training_set`: balanced by inclusion, at most
``max_rows``). Trained as the paper's code trains it: SGD (momentum 0.9, learning rate
1e-3, weight decay 5e-4), batch 128, 100 epochs, the learning rate x 0.1 at half and at three
quarters of them. Score: P(IN) of the target's rows; threshold 0.5 (the target's membership
is never read, as for the shadow MLP).

Where this differs from the paper's code (``mia_prune``), on purpose:

- **Shadow models.** The paper trains 5 shadow networks on disjoint shadow data (IN: a
  shadow's training set, OUT: its test set) and prunes each like the target. Here the
  shadows are the K reference models of the pipeline (Carlini et al.'s design: every pool
  row IN for half of them), pruned like the target, and their OUT rows include scored rows
  outside the pool.
- **Tokens beyond ``tokens`` classes.** With at most ``tokens`` classes (default 10: every
  class of digits, CIFAR-10 and SVHN) the tokens are the classes in class order, as
  published. With more (CIFAR-100, ImageNet), a token per class would make the attack's cost
  grow with C (1000 tokens per row at ImageNet: 100x the attention cost of CIFAR-10), so the
  tokens are the true class followed by the ``tokens`` - 1 most probable other classes, in
  decreasing probability: a token's position then means a rank, not a class. ``tokens:
  null`` keeps one token per class whatever C.
- **Threads and device.** The classifier trains on the fit-attack job's CPU threads.

Settings (``attack.samia``): ``epochs``, ``batch_size``, ``lr``, ``momentum``,
``weight_decay``, ``hidden``, ``layers``, ``heads``, ``feedforward``, ``dropout``,
``tokens``, ``max_rows`` (defaults above; max_rows 20000).
"""

from __future__ import annotations

import numpy as np

from .base import AttackData, AttackScores, register_attack
from .lira import check_settings
from .shadow import shadow_training_set

NAME = "samia"
DEFAULTS = {"epochs": 100, "batch_size": 128, "lr": 1e-3, "momentum": 0.9,
            "weight_decay": 5e-4, "hidden": 64, "layers": 3, "heads": 4, "feedforward": 128,
            "dropout": 0.2, "tokens": 10, "max_rows": 20000}
_INTEGERS = ("epochs", "batch_size", "hidden", "layers", "heads", "feedforward")
NO_SENSITIVITY = ("has no sensitivity column: SAMIA reads each row's sensitivity to input "
                  "noise, which the scoring job stores only on the models samia runs on and "
                  "their references (config key confidences.sensitivity); delete the table "
                  "and rerun the workflow with samia in references.attacks")


def _settings(settings: dict | None) -> dict:
    s = {**DEFAULTS, **check_settings(NAME, settings, set(DEFAULTS))}
    for key in _INTEGERS:
        v = s[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"config key attack.{NAME}.{key}: {v!r} is not a positive "
                             "integer")
    for key in ("lr", "momentum", "weight_decay", "dropout"):
        v = s[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0 \
                or (key == "lr" and not v > 0) or (key in ("momentum", "dropout") and v >= 1):
            raise ValueError(f"config key attack.{NAME}.{key}: {v!r} is out of range")
    if s["hidden"] % s["heads"]:
        raise ValueError(f"config key attack.{NAME}.hidden: {s['hidden']} is not a multiple "
                         f"of heads ({s['heads']})")
    for key in ("tokens", "max_rows"):
        v = s[key]
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 2):
            raise ValueError(f"config key attack.{NAME}.{key}: {v!r} is not an integer >= 2 "
                             "(or null)")
    return s


TOKEN_CHUNK = 4096  # rows whose tokens are built at once (bounds the n x C temporaries)


def samia_tokens(table, tokens: int | None) -> np.ndarray:
    """(rows, 3L) float32: the rows' tokens as the paper flattens them, [p_1..p_L, s_1..s_L,
    onehot_1..onehot_L]: every class in class order when the table has at most ``tokens``
    classes (or ``tokens`` is None), else the true class and the ``tokens`` - 1 most
    probable others, in decreasing probability. Built ``TOKEN_CHUNK`` rows at a time: the
    softmax and the ranking of a chunk are its only n x C temporaries (at ImageNet's 100k
    scored rows and 1000 classes, all at once they would be gigabytes)."""
    if table.sensitivity is None:
        raise ValueError(f"a confidence table of {table.metadata.get('dataset', '?')} "
                         f"{NO_SENSITIVITY}")
    n, c = table.logits.shape
    length = c if tokens is None or c <= tokens else tokens
    out = np.empty((n, 3 * length), dtype=np.float32)
    for start in range(0, n, TOKEN_CHUNK):
        part = table.take(np.arange(start, min(start + TOKEN_CHUNK, n)))
        out[start:start + len(part)] = _tokens(part, length)
    return out


def _tokens(table, length: int) -> np.ndarray:
    p = table.softmax
    n, c = p.shape
    rows = np.arange(n)[:, None]
    if length == c:
        cls = np.broadcast_to(np.arange(c), (n, c))
    else:
        others = p.copy()
        others[np.arange(n), table.label] = -1.0  # the true class goes first
        top = np.argpartition(-others, length - 1, axis=1)[:, :length - 1]
        top = np.take_along_axis(top, np.argsort(-others[rows, top], axis=1), axis=1)
        cls = np.concatenate([table.label[:, None], top], axis=1)
    onehot = (cls == table.label[:, None]).astype(np.float32)
    return np.concatenate([p[rows, cls], table.sensitivity[rows, cls], onehot], axis=1)


def _network(length: int, s: dict):
    import torch
    from torch import nn

    class SelfAttentionAttack(nn.Module):
        def __init__(self):
            super().__init__()
            self.length, h = length, s["hidden"]
            self.norm = nn.BatchNorm1d(3 * length)
            self.embed = nn.Linear(3, h)
            layer = nn.TransformerEncoderLayer(h, s["heads"], s["feedforward"], s["dropout"],
                                               activation="gelu", batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, s["layers"],
                                                 enable_nested_tensor=False)
            self.head = nn.Sequential(nn.Linear(h * length, h), nn.ReLU(), nn.Linear(h, 2))

        def forward(self, x):
            x = self.norm(x).view(-1, 3, self.length).transpose(1, 2).contiguous()
            x = self.encoder(torch.nn.functional.gelu(self.embed(x)))
            return self.head(x.flatten(1))

    return SelfAttentionAttack()


class SAMIA:
    threshold = 0.5

    def __init__(self, settings: dict | None, seed: int):
        self.s, self.seed = _settings(settings), seed

    def fit_score(self, data: AttackData) -> AttackScores:
        import time

        import torch

        s = self.s
        t0 = time.perf_counter()
        if data.target.sensitivity is None:
            raise ValueError(f"attack {NAME!r}: the target's confidence table "
                             f"{NO_SENSITIVITY}")
        x, y = shadow_training_set(data, NAME, self.seed, s["max_rows"],
                                   lambda t: samia_tokens(t, s["tokens"]))
        length = x.shape[1] // 3
        with torch.random.fork_rng(devices=[]):  # seeded: init, dropout and batch order
            torch.manual_seed(self.seed)
            net = _network(length, s)
            t1 = time.perf_counter()
            loss_last, train_acc = self._fit(net, torch.from_numpy(x), torch.from_numpy(y))
            t2 = time.perf_counter()
        score = self._predict(net, samia_tokens(data.target, s["tokens"]))
        score = np.where(data.judged(), score, np.nan)  # the rows the references can judge
        info = {"n_references": len(data.references), "shadow_rows": int(len(y)),
                "shadow_train_accuracy": train_acc, "tokens": int(length),
                "epochs": int(s["epochs"]), "final_loss": loss_last,
                # the classifier's training (linear in epochs, bounded by max_rows) and the
                # rest (reading the shadow rows, scoring the target): attack_scaling.py
                # extrapolates them apart
                "fit_seconds": round(t2 - t1, 3),
                "other_seconds": round(time.perf_counter() - t0 - (t2 - t1), 3)}
        return AttackScores(score.astype(np.float64), self.threshold, info)

    def _fit(self, net, x, y) -> tuple[float, float]:
        import torch
        import torch.nn.functional as F

        s = self.s
        opt = torch.optim.SGD(net.parameters(), lr=s["lr"], momentum=s["momentum"],
                              weight_decay=s["weight_decay"], foreach=False)
        sched = torch.optim.lr_scheduler.MultiStepLR(
            opt, milestones=[s["epochs"] // 2, s["epochs"] * 3 // 4], gamma=0.1)
        net.train()
        n, bs = len(y), s["batch_size"]
        total = 0.0
        for _ in range(s["epochs"]):
            order, total = torch.randperm(n), 0.0
            for i in range(0, n, bs):
                at = order[i:i + bs]
                if len(at) < 2:  # BatchNorm needs two rows
                    continue
                opt.zero_grad()
                loss = F.cross_entropy(net(x[at]), y[at])
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(at)
            sched.step()
        net.eval()
        acc = float(((self._predict(net, x.numpy()) >= 0.5) == y.numpy().astype(bool)).mean())
        return round(total / max(n, 1), 6), acc

    @staticmethod
    def _predict(net, x: np.ndarray) -> np.ndarray:
        import torch

        net.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(x), 4096):
                out.append(torch.softmax(net(torch.from_numpy(x[i:i + 4096])), 1)[:, 1])
        return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(0)


@register_attack(NAME, kind="reference", needs_references=True, needs_sensitivity=True,
                 defaults=dict(DEFAULTS),
                 description="SAMIA (Yuan & Zhang 2022): a self-attention classifier on "
                             "per-class (probability, sensitivity to input noise, true "
                             "class) tokens, trained on the pruned reference models")
def samia(settings: dict | None, seed: int) -> SAMIA:
    return SAMIA(settings, seed)
