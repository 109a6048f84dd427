"""The ``lottery-mia`` command line (``python -m lottery_mia.cli`` without installing).

``lottery-mia audit``: audit any model's outputs (:mod:`lottery_mia.audit`, whose doc gives
the input format)::

    lottery-mia audit --target target.parquet [--references refs.parquet ...] --out DIR
                      [--sample-size N] [--seed S] [--attacks mlp,loss,lira_online ...]
                      [--attack-sample sample.parquet] [--attack-settings settings.yaml]
                      [--features softmax] [--n-bootstrap 1000] [--test-fraction 0.5]
                      [--name NAME]

Exit status 0 on success, 2 on an input the audit cannot use (the message names the file,
the column and what to do).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

__all__ = ["main", "parser"]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lottery-mia", description=(
        "Membership-inference attacks on lottery-ticket networks (the Snakemake pipeline) "
        "and on any model's outputs (audit)."))
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    a = sub.add_parser("audit", help="audit any model's outputs", description=(
        "Run every membership-inference attack the inputs allow on a model's logits, with "
        "the pipeline's own attacks, intervals and low-FPR rules; write attacks.csv, "
        "scores.parquet, metrics.json, roc.png, report.html and audit.json into --out. "
        "Input format: python -m pydoc lottery_mia.audit"))
    a.add_argument("--target", required=True, metavar="PARQUET",
                   help="the model's outputs: sample_id, label, logits (list of floats), "
                        "member (bool)")
    a.add_argument("--references", nargs="+", action="extend", metavar="PARQUET",
                   help="reference models' outputs: reference, sample_id, logits, included "
                        "(one or more files; 'reference' may be left out of a file holding "
                        "one reference: the file name names it)")
    a.add_argument("--out", required=True, metavar="DIR", help="folder of the results")
    a.add_argument("--sample-size", type=int, metavar="N",
                   help="attack sample size n (n/2 members + n/2 non-members, class-"
                        "stratified; default: every same-class pair, at most 10000)")
    a.add_argument("--seed", type=int, default=0,
                   help="seed of the attack sample, the attack models and the bootstrap "
                        "(default 0)")
    a.add_argument("--attacks", nargs="+", action="extend", metavar="NAME",
                   help="run only these attacks (names separated by spaces or commas; "
                        "default: every attack the inputs allow)")
    a.add_argument("--attack-sample", metavar="PARQUET",
                   help="use this attack sample (sample_id, fold) instead of drawing one, "
                        "e.g. a pipeline run's attack_samples/n<N>.parquet")
    a.add_argument("--attack-settings", metavar="YAML",
                   help="settings per attack, as the pipeline's attack.<name> blocks, e.g. "
                        "'mlp: {hidden_layer_sizes: [64]}' (YAML or JSON)")
    a.add_argument("--features", default="softmax",
                   help="features of the classifier attacks: softmax (default), sorted, "
                        "softmax_label or log_softmax")
    a.add_argument("--n-bootstrap", type=int, default=1000,
                   help="bootstrap resamples behind every interval (default 1000, at "
                        "least 200)")
    a.add_argument("--test-fraction", type=float, default=0.5,
                   help="share of the attack sample held out to evaluate the attacks "
                        "(default 0.5)")
    a.add_argument("--name", help="the model's name in the report (default: the target "
                                  "file's name)")
    return p


def _settings(path) -> dict | None:
    from .audit import AuditInputError

    if path is None:
        return None
    import yaml

    try:
        value = yaml.safe_load(Path(path).read_text())
    except OSError as err:
        raise AuditInputError(f"{path}: cannot read the attack settings ({err.strerror})") \
            from None
    except yaml.YAMLError as err:
        first = (str(err).strip().splitlines() or ["?"])[0]
        raise AuditInputError(f"{path}: not valid YAML or JSON ({first})") from None
    if value is None:
        return None
    if not isinstance(value, dict):
        raise AuditInputError(f"{path}: the attack settings must be a mapping of attack "
                              "name -> its settings, e.g. 'mlp: {max_iter: 300}'")
    return value


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = parser().parse_args(argv)
    if args.command == "audit":
        from .audit import AuditInputError, audit

        command = "lottery-mia " + " ".join(
            shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
        try:
            result = audit(args.target, args.references, out_dir=args.out,
                           sample_size=args.sample_size, seed=args.seed, attacks=args.attacks,
                           attack_settings=_settings(args.attack_settings),
                           features=args.features, n_bootstrap=args.n_bootstrap,
                           test_fraction=args.test_fraction, attack_sample=args.attack_sample,
                           name=args.name, command=command)
        except AuditInputError as err:
            print(f"lottery-mia audit: error: {err}", file=sys.stderr)
            return 2
        except OSError as err:  # --out unwritable: a missing parent, a file, a full disk
            where = err.filename or args.out
            print(f"lottery-mia audit: error: cannot write {where}: "
                  f"{err.strerror or err}; give another --out folder (or free space)",
                  file=sys.stderr)
            return 2
        print(f"report: {result.files['report']}")
        return 0
    return 2  # pragma: no cover - argparse refuses other commands


if __name__ == "__main__":
    sys.exit(main())
