"""The audit's headline: a plain torchvision resnet18, trained outside the pipeline, audited.

    .venv/bin/python benchmarks/audit_headline.py OUT_DIR [--epochs 30] [--members 300]

A ``torchvision.models.resnet18(num_classes=10)`` is trained with Adam on ``--members``
digits images (upsampled to 3 x 32 x 32; every other image is held out), and 4 reference
resnet18s each on half of a pool of its members and as many non-members (the pipeline's
inclusion design); ``lottery_mia.audit.audit`` then runs every attack on their logits and
writes its files into OUT_DIR. Minutes on a CPU (5 resnet18 trainings; about 15 minutes on
a shared 2-core machine). The last line printed is JSON: the headline numbers per attack.
The training helpers are those of tests/test_audit.py (one definition of "a model trained
outside the pipeline").
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE.parent / "tests"))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--members", type=int, default=300)
    args = ap.parse_args(argv)

    from test_audit import model_and_references, resnet18_logits

    from lottery_mia.audit import audit

    t0 = time.time()
    target, refs = model_and_references(
        lambda x, y, rows, seed: resnet18_logits(x, y, rows, seed, epochs=args.epochs),
        members=args.members)
    trained = time.time() - t0
    res = audit(target, refs, out_dir=args.out, name="torchvision resnet18")
    cols = ["attack", "kind", "auc", "auc_ci_low", "auc_ci_high", "tpr_at_fpr_0.1",
            "tpr_at_fpr_0.01", "n_eval_members", "n_eval_nonmembers"]
    table = res.attacks[[c for c in cols if c in res.attacks]]
    print(table.to_string(index=False))
    out = {"train_seconds": round(trained, 1), "audit_seconds": round(time.time() - t0 - trained, 1),
           "attacks": {r["attack"]: {k: (None if v != v else v) for k, v in r.items()
                                     if k != "attack"}
                       for r in table.to_dict("records")}}
    print(json.dumps(out, default=float))
    return out


if __name__ == "__main__":
    main()
