"""Running the audit: every attack the inputs allow, as the pipeline's fit-attack job runs
them, and the outputs written."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..attack_samples import FOLDS
from ..confidences import ConfidenceTable, write_confidences
from ..io import atomic_path, log, write_csv, write_json
from .inputs import (FEATURES_DOC, MIN_BOOTSTRAP, AuditInputError, References, _check_settings,
                     attack_sample_for, plan_attacks, read_references, read_target)
from .report import draw_roc, write_report


# --------------------------------------------------------------------------- running
@dataclass
class AuditResult:
    """What :func:`audit` wrote: the attacks table, every row's scores, the files."""

    attacks: pd.DataFrame
    scores: pd.DataFrame
    out_dir: Path
    files: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)

    def row(self, attack: str) -> dict:
        """One attack's row of :attr:`attacks` as a dict."""
        return self.attacks.set_index("attack").loc[attack].to_dict()


def input_warnings(table) -> list[str]:
    """What looks wrong in the target's inputs without being refused: probabilities given
    as logits (every row in [0, 1], summing to 1). The attacks then read log-probabilities
    of log-probabilities; the audit still runs, and says so."""
    out = []
    x = np.asarray(table.logits, dtype=np.float64)
    if x.size and x.min() >= 0 and x.max() <= 1 and np.allclose(x.sum(1), 1, atol=1e-3):
        out.append(f"every row of {table.metadata['source']}'s 'logits' lies in [0, 1] and sums "
                   "to 1: these look like softmax probabilities, not logits. The attacks "
                   "apply a softmax to what they are given; pass the network's raw outputs "
                   "(or np.log of the probabilities, which a softmax maps back to them)")
    return out


# what an audit writes into its --out folder
OUTPUT_FILES = {"attacks": "attacks.csv", "scores": "scores.parquet", "metrics": "metrics.json",
                "roc": "roc.png", "report": "report.html", "audit": "audit.json"}


def audit(target, references=None, *, out_dir, sample_size: int | None = None,
          seed: int = 0, attacks=None, attack_settings: dict | None = None,
          features: str = "softmax", n_bootstrap: int = 1000, test_fraction: float = 0.5,
          attack_sample=None, name: str | None = None, command: str | None = None
          ) -> AuditResult:
    """Audit one model's outputs: read and check ``target`` (and ``references``), run every
    attack the inputs allow (or those of ``attacks``) with the pipeline's fit-attack job,
    and write ``attacks.csv``, ``scores.parquet``, ``metrics.json``, ``roc.png``,
    ``report.html`` and ``audit.json`` into ``out_dir`` (see the module doc).

    ``target``/``references``/``attack_sample``: Parquet paths or DataFrames;
    ``sample_size``: n of the attack sample (default: every same-class member/non-member
    pair, at most 10,000 rows); ``seed``: of the sample, the attack models and the
    bootstrap; ``attack_settings``: ``{attack: {setting: value}}`` as the pipeline's
    ``attack.<name>``; ``name``: the model's name in the report; ``command``: the command
    line shown in the report."""
    from ..attacks import FEATURES

    started = time.time()
    if features not in FEATURES:
        raise AuditInputError(f"features {features!r}: choose {FEATURES_DOC}")
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)) or \
            n_bootstrap < MIN_BOOTSTRAP:
        raise AuditInputError(f"n_bootstrap {n_bootstrap!r} must be an integer of at least "
                              f"{MIN_BOOTSTRAP} (resamples behind every interval)")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or \
            not 0 <= seed < 2**32:
        raise AuditInputError(f"seed {seed!r} must be an integer in [0, 2^32)")
    if attack_settings is not None and not isinstance(attack_settings, dict):
        raise AuditInputError("attack settings must be a mapping of attack name -> its "
                              f"settings, got {type(attack_settings).__name__}")
    if attack_sample is not None and sample_size is not None:
        raise AuditInputError("give either a sample size (the audit draws the attack "
                              "sample) or an attack sample, not both")
    out = Path(out_dir)
    if out.is_symlink() and not out.exists():
        raise AuditInputError(f"{out}: is a symbolic link to a folder that does not exist; "
                              "give a folder for the results")
    if out.exists() and not out.is_dir():
        raise AuditInputError(f"{out}: exists and is not a folder; give a folder for the "
                              "results")
    final = {k: out / f for k, f in OUTPUT_FILES.items()}
    for what, given in (("target", target), ("references", references),
                        ("attack sample", attack_sample)):
        if isinstance(given, (str, Path)) and any(
                Path(given).resolve() == p.resolve() for p in final.values()):
            raise AuditInputError(f"the {what} {given} is one of the audit's outputs in {out}; "
                                  "give another --out folder (the audit would overwrite its "
                                  "own input)")
    table = read_target(target, name)
    warnings = input_warnings(table)
    for w in warnings:
        log(f"warning: {w}")
    refs = read_references(references, table) if references is not None else None
    k = len(refs.tables) if refs else 0
    names, skipped = plan_attacks(attacks, k, attack_settings or {})
    settings = _check_settings(attack_settings, names)
    sample = attack_sample_for(table, sample_size, seed, test_fraction, attack_sample)
    out.mkdir(parents=True, exist_ok=True)
    log(f"audit of {table.metadata['source']}: {len(table)} rows "
        f"({int(table.member.sum())} members), {k} reference model(s), attack sample "
        f"n={len(sample)}; attacks {names}")
    result, scores, dropped = run_audit_attacks(table, refs, sample, names, settings,
                                                features=features, seed=int(seed),
                                                n_bootstrap=int(n_bootstrap))
    if dropped:
        log(f"left out {sorted(dropped)}: {next(iter(dropped.values()))}")
        skipped = {**skipped, **dropped}
        names = [n for n in names if n not in dropped]
    # every output is written into a staging folder beside --out and moved into place at
    # the end: a failed run leaves the previous outputs whole, never half of each
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out))
    try:
        files = {k: stage / f for k, f in OUTPUT_FILES.items()}
        write_json(result, files["metrics"])
        with atomic_path(files["scores"]) as tmp:
            scores.to_parquet(tmp, index=False)
        frame = attacks_frame(result, n_bootstrap)
        write_csv(frame, files["attacks"])
        inputs = describe_inputs(table, refs, sample, attack_sample, seed, test_fraction,
                                 sample_size)
        inputs["warnings"] = warnings
        draw_roc(frame, scores, files["roc"], table.metadata["model"])
        run = {"attacks": names, "skipped": skipped, "settings": settings,
               "features": features, "seed": int(seed), "n_bootstrap": int(n_bootstrap),
               "command": command, "seconds": round(time.time() - started, 1)}
        write_json({"inputs": inputs, **run,
                    "files": {k: str(v) for k, v in final.items()}}, files["audit"])
        write_report(frame, inputs, run, files, table.metadata["model"])
        for key, path in files.items():
            os.replace(path, final[key])
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    files = final
    log(f"wrote {files['report']} ({run['seconds']}s)")
    return AuditResult(frame, scores, out, files, skipped, inputs)


def run_audit_attacks(table: ConfidenceTable, refs: References | None, sample: pd.DataFrame,
                      names: list[str], settings: dict, *, features: str, seed: int,
                      n_bootstrap: int) -> tuple[dict, pd.DataFrame, dict]:
    """Every attack of ``names`` on the target, as the fit-attack job runs them: the tables
    are written in the pipeline's formats (a temporary folder) and read back by the
    pipeline's :func:`attack_data` and :func:`add_references` (the reference attacks get
    every other row of the target, fold ``outside``, and its non-members as RMIA's
    population), then :func:`evaluate_attacks` fits and evaluates them. Returns the result
    (``metrics.json``: sample size, features, seed and a row per attack) and the scores
    table (``scores.parquet``: a ``score_<attack>`` column per attack), and the reference
    attacks left out with the reason (:func:`design_problem`)."""
    from ..attacks import (ATTACKS, add_references, attack_data, evaluate_attacks,
                          scores_table)

    needs = any(ATTACKS[n].needs_references for n in names)
    with tempfile.TemporaryDirectory(prefix="lottery-mia-audit-") as tmp:
        tmp = Path(tmp)
        write_confidences(table, tmp / "target.parquet")
        sample.to_parquet(tmp / "sample.parquet", index=False)
        data = attack_data(tmp / "target.parquet", tmp / "sample.parquet", features,
                           all_rows=needs)
        if needs:
            paths = []
            for i, t in enumerate(refs.tables):
                paths.append(tmp / f"ref-{i}.parquet")
                write_confidences(t, paths[-1])
            refs.inclusion_frame().to_parquet(tmp / "inclusion.parquet", index=False)
            add_references(data, paths, tmp / "inclusion.parquet", tmp / "target.parquet")
        dropped = {}
        if needs and (why := design_problem(data)):
            dropped = {n: why for n in names if ATTACKS[n].needs_references}
            names = [n for n in names if n not in dropped]
            if not names:
                raise AuditInputError(f"references: {why}")
        # inside the folder: the shadow attack reads its rows' logits back from the files
        rows, by_attack = evaluate_attacks(data, names, settings, seed=seed,
                                           n_bootstrap=n_bootstrap)
    scores = scores_table(data, by_attack)
    result = {"model": table.metadata["model"], "n_references": len(refs.tables) if refs
              else 0, "sample_size": int(sample["fold"].isin(FOLDS).sum()),
              "features": features, "seed": seed, "n_bootstrap": n_bootstrap,
              "attacks": rows}
    return result, scores, dropped


# A reference attack needs at least this many members and as many non-members among the
# rows its references can judge (IN for some, OUT for another), in the attack-train fold
# (to place its threshold) and outside it (to be evaluated). Few judged rows are reported
# with wide intervals; none is a design that cannot carry the attack.
MIN_JUDGED = 1


def design_problem(data) -> str | None:
    """Why the references' inclusion design cannot carry a reference attack (too few rows
    IN for some reference and OUT for another, e.g. every reference trained on the same
    half), or ``None``."""
    judged = data.judged()
    train = (data.sample["fold"] == "attack_train").to_numpy()
    member = data.is_member
    counts = {}
    for where, rows in (("attack-train", judged & train), ("evaluation", judged & ~train)):
        counts[where] = (int((rows & member).sum()), int((rows & ~member).sum()))
    if all(min(c) >= MIN_JUDGED for c in counts.values()):
        return None
    (tm, tn), (em, en) = counts["attack-train"], counts["evaluation"]
    return (f"only {int(judged.sum())} of the {len(judged)} rows are IN for some reference "
            f"and OUT for another ({tm} members and {tn} non-members among the attack-train "
            f"rows, {em} and {en} among the rest; each needs members and non-members): "
            "the references must train on different random halves of the pool (draw each "
            "reference's IN half independently)")


FIRST_COLUMNS = ["attack", "kind", "n_eval_members", "n_eval_nonmembers", "min_fpr",
                 "n_references"]
HEADLINE_METRICS = ["auc", "balanced_accuracy", "accuracy", "tpr_at_fpr_0.1", "tpr_at_fpr_0.01",
                    "tpr_at_fpr_0.001"]


def attacks_frame(result: dict, n_bootstrap: int) -> pd.DataFrame:
    """The rows of the fit-attack result, one per attack, headline columns first."""
    frame = pd.DataFrame(result["attacks"])
    if "n_references" not in frame:
        frame["n_references"] = np.nan
    first = FIRST_COLUMNS + [f"{m}{x}" for m in HEADLINE_METRICS
                             for x in ("", "_ci_low", "_ci_high")]
    frame = frame[first + [c for c in frame.columns if c not in first]]
    frame["sample_size"] = result["sample_size"]
    frame["features"] = result["features"]
    frame["seed"] = result["seed"]
    frame["n_bootstrap"] = int(n_bootstrap)
    return frame


def describe_inputs(table, refs, sample, attack_sample, seed, test_fraction,
                    sample_size) -> dict:
    """What the audit read, for the report and ``audit.json``."""
    from ..stats.metrics import proportion_ci

    def accuracy(mask) -> dict:
        hits = int(table.correct[mask].sum())
        lo, hi = proportion_ci(hits, int(mask.sum()))
        return {"value": hits / int(mask.sum()), "ci_low": lo, "ci_high": hi}

    m = table.member
    inputs = {"target": {"source": table.metadata["source"], "model": table.metadata["model"],
                         "rows": len(table), "members": int(m.sum()),
                         "nonmembers": int((~m).sum()), "classes": int(table.logits.shape[1]),
                         "train_accuracy": accuracy(m), "heldout_accuracy": accuracy(~m)},
              "attack_sample": {
                  "source": (attack_sample if isinstance(attack_sample, (str, Path))
                             else "the attack-sample DataFrame" if attack_sample is not None
                             else "drawn by make_attack_sample"),
                  "size": int(sample["fold"].isin(FOLDS).sum()),
                  "attack_train": int((sample["fold"] == "attack_train").sum()),
                  "attack_test": int((sample["fold"] == "attack_test").sum()),
                  "requested_size": sample_size, "seed": int(seed),
                  "test_fraction": test_fraction,
                  "classes": int(sample["label"].nunique())}}
    inputs["attack_sample"]["source"] = str(inputs["attack_sample"]["source"])
    if refs:
        inc = refs.included
        inputs["references"] = {
            "sources": list(dict.fromkeys(refs.sources)), "count": len(refs.tables),
            "names": refs.names, "in_per_reference": inc.sum(1).tolist(),
            "rows_without_in": int((~inc.any(0)).sum()),
            "rows_without_out": int(inc.all(0).sum()),
            "rows_unjudged": int((~(inc.any(0) & ~inc.all(0))).sum()),
            "rows_judged": int((inc.any(0) & ~inc.all(0)).sum()),
            "ignored_rows": refs.ignored_rows}
    return inputs
