"""PPB, pair-based posterior balancing (Yuan & Zhang, "Membership Inference Attacks and
Defenses in Neural Network Pruning", USENIX Security 2022; their ``mia_prune`` code): the
cross-entropy plus ``strength`` times the KL divergence between the sorted softmax vectors
of the two halves of each batch,

    loss = CE(z, y) + strength * KL( softmax(sort(z_B)) || softmax(sort(z_A)) ),

z_A the first half of the batch's logits and z_B the second (the odd row of an odd batch
left out), each row's logits sorted in descending order (so the classes do not matter, only
the shape of the posterior), the KL averaged over the pairs ("batchmean"). Members end up
with posteriors shaped like the rest of the batch's, which narrows the confidence gap that
membership inference reads. ``strength`` 0 is the plain cross-entropy. In a distributed
run the halves are those of each rank's own batch.
"""

from __future__ import annotations

from .base import register_defence


@register_defence("ppb", defaults={"strength": 1.0}, strength=("strength", "λ", True),
                  description="pair-based posterior balancing (Yuan & Zhang 2022): "
                              "cross-entropy + strength x KL between the sorted softmax "
                              "vectors of the two halves of a batch")
class PPB:
    def __init__(self, settings: dict):
        s = settings.get("strength")
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not s >= 0 \
                or s == float("inf"):
            raise ValueError(f"config key training.<dataset>.<arch>.defence.ppb.strength: "
                             f"{s!r} is not a number >= 0")
        self.strength = float(s)

    def loss(self, logits, labels):
        import torch.nn.functional as F

        z = logits.float()
        ce = F.cross_entropy(z, labels)
        half = z.shape[0] // 2
        if self.strength == 0 or half == 0:
            return ce
        ranked = z.sort(dim=1, descending=True).values
        kl = F.kl_div(F.log_softmax(ranked[:half], dim=1),
                      F.softmax(ranked[half:2 * half], dim=1), reduction="batchmean")
        return ce + self.strength * kl
