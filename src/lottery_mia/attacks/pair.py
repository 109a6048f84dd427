"""The pair attacks: the adversary queries a pruned network *and* its dense parent.

Model hubs publish a dense network beside its pruned variants. An adversary who can query
both compares them row by row (the compression literature's differential attack; CompLeak,
arXiv 2507.16872, uses the compressed model as a reference for the original). Whether the
pair leaks more than either network alone is the question these attacks answer (the report's
pair verdicts: each pair attack against the stronger of the single-network attacks it
extends, on the same rows, over seeds).

- ``pair_lira``: LiRA online (:mod:`.lira`) on the per-row difference of the two networks'
  scaled logits of the true class, d = phi_ticket - phi_dense (per scored view). The IN/OUT
  Gaussians of d come from reference *pairs*: each reference's dense network and its own
  ticket (pruned from it at the same sparsity, retrained on the same half of the pool, so
  the reference's inclusion holds for both). Like every reference attack it scores only the
  rows its references can judge (IN for some reference, OUT for another); nothing is
  imputed.
- ``pair_mlp``: the paper's MLP on the two networks' attack features side by side
  ([features(ticket), features(dense)]; ``attack.features``), fit on attack-train rows and
  evaluated on attack-test rows like the other classifier attacks. No reference model.

Neither reads the target's membership labels outside the attack-train rows. A dense network
has no parent: the plan runs these attacks on pruned networks only.
"""

from __future__ import annotations

import numpy as np

from .base import AttackData, attack_features, register_attack
from .classifiers import ESTIMATORS, OWN_SETTINGS, ClassifierAttack
from .lira import DEFAULTS as LIRA_DEFAULTS, LiRA

__all__ = ["PairLiRA", "PairClassifier", "check_parent"]


def check_parent(data: AttackData, name: str, references: bool = False) -> None:
    """A ValueError naming ``name`` unless ``data`` holds the dense parent's rows aligned
    with the sample (and, with ``references``, each reference's parent's rows)."""
    ids = data.sample["sample_id"].to_numpy()
    if data.parent is None:
        raise ValueError(f"attack {name!r} needs the target's dense parent (AttackData.parent)")
    if not np.array_equal(data.parent.sample_id, ids):
        raise ValueError(f"attack {name!r}: the dense parent's rows are not aligned with the "
                         "attack sample (same sample_id order required)")
    if references:
        parents = data.parent_references or []
        if len(parents) != len(data.references or []):
            raise ValueError(f"attack {name!r}: {len(parents)} reference parents for "
                             f"{len(data.references or [])} reference tickets")
        for k, p in enumerate(parents):
            if not np.array_equal(p.sample_id, ids):
                raise ValueError(f"attack {name!r}: reference {k}'s dense parent is not "
                                 "aligned with the attack sample")


class PairLiRA(LiRA):
    """LiRA online on d = phi_ticket - phi_dense, IN/OUT from the reference pairs."""

    def __init__(self, settings: dict | None, seed: int):
        super().__init__("pair_lira", True, settings, seed)

    def statistics(self, data: AttackData) -> tuple[np.ndarray, np.ndarray]:
        check_parent(data, self.name, references=True)
        tickets, ticket_t = super().statistics(data)
        parents = np.stack([p.scaled_logit_views() for p in data.parent_references])
        parent_t = data.parent.scaled_logit_views()
        if parents.shape != tickets.shape or parent_t.shape != ticket_t.shape:
            raise ValueError("attack 'pair_lira': the dense parents were scored on other views "
                             "than the tickets; score them alike (confidences.augmentations)")
        return (np.ascontiguousarray(tickets - parents),
                np.ascontiguousarray(ticket_t - parent_t))


class PairClassifier(ClassifierAttack):
    """The paper's MLP on [features(ticket), features(dense parent)]."""

    def features(self, data: AttackData) -> np.ndarray:
        check_parent(data, self.name)
        return np.hstack([data.feature_matrix(), attack_features(data.parent, data.features)])


@register_attack("pair_lira", kind="reference", needs_references=True, needs_parent=True,
                 extends="lira_online", defaults=LIRA_DEFAULTS,
                 description="pair LiRA: LiRA online on the difference of the ticket's and "
                             "its dense parent's scaled logits, IN/OUT from reference pairs")
def pair_lira(settings: dict | None, seed: int) -> PairLiRA:
    return PairLiRA(settings, seed)


@register_attack("pair_mlp", kind="classifier", needs_parent=True, extends="mlp",
                 estimator=ESTIMATORS["pair_mlp"][0],
                 defaults={**ESTIMATORS["pair_mlp"][1], **OWN_SETTINGS["pair_mlp"]},
                 description="pair MLP: the paper's MLP on the ticket's and its dense "
                             "parent's attack features side by side")
def pair_mlp(settings: dict | None, seed: int) -> PairClassifier:
    return PairClassifier("pair_mlp", settings, seed)
