"""Audit any model's outputs: every membership-inference attack the inputs allow, run on
logits that any model produced (not only the pipeline's networks), with the pipeline's own
code, intervals and low-FPR rules.

Two entry points over the same code: :func:`audit` (Python) and ``lottery-mia audit``
(:mod:`lottery_mia.cli`). Both read the tables below, check them, turn them into the
pipeline's own objects (:class:`~lottery_mia.confidences.ConfidenceTable`, the attack
sample of :func:`~lottery_mia.attack_samples.make_attack_sample`, the reference inclusion
table of :mod:`lottery_mia.references`), written in the pipeline's formats, and call the
attack code the pipeline's fit-attack job (:func:`lottery_mia.jobs.attack.run_attacks`)
calls on them: :func:`~lottery_mia.attacks.attack_data`,
:func:`~lottery_mia.attacks.add_references` and
:func:`~lottery_mia.attacks.evaluate_attacks`. The attacks, their fitting, the rows each is
evaluated on, the bootstrap intervals, the metrics and the scores are those of a pipeline
run (``tests/test_audit.py`` checks they are equal, number for number).

Input format
============

**Target** (one Parquet file, or a pandas DataFrame in Python): one row per sample the
model was or was not trained on.

==========  ===================  ===========================================================
column      type                 meaning
==========  ===================  ===========================================================
sample_id   integer              the sample's id, unique (any integers: they link the
                                 target's rows to the references' rows)
label       integer              its true class, 0 .. C-1
logits      list of C floats     the model's raw outputs (before softmax) on the sample; the
                                 same C >= 2 on every row, finite. Kept as float32, as the
                                 pipeline scores its own networks
member      bool (or 0/1)        True: the sample was in the model's training set; False:
                                 the model never trained on it. The truth the attacks are
                                 evaluated against (classifier and threshold attacks also
                                 learn from it on the attack-train fold)
==========  ===================  ===========================================================

Other columns are ignored. Rows are used in the table's order, as the pipeline uses its
confidence tables' (the attack sample and the shadow model's training rows are seeded
draws over them): the same table, seed and settings give the same numbers; a table
exported from a pipeline run in its own order gives exactly the pipeline's.

**References** (optional; one or more Parquet files, or DataFrames): K reference models
trained like the target on other subsets of the same data, one row per reference and
sample (long format).

==========  ===================  ===========================================================
column      type                 meaning
==========  ===================  ===========================================================
reference   integer or string    which reference model. May be left out of a file that
                                 holds a single reference: the file's name (without
                                 ``.parquet``) then names it
sample_id   integer              a sample id of the target; every reference needs a row
                                 for every target sample (rows of other ids are ignored)
logits      list of C floats     the reference's logits on the sample (same C as the target)
included    bool (or 0/1)        True: the reference trained on the sample
label       integer, optional    if given, must equal the target's label of the sample
==========  ===================  ===========================================================

K must be even and at least 2 (the pipeline's design, after Carlini et al.: each sample is
IN for about half of the references; 16 or more for per-sample variances), and each
reference needs IN and OUT samples among the target's. RMIA's ``a: auto`` tunes ``a`` on
one reference and needs K >= 4; with fewer, give ``a`` (``attack_settings={"rmia": {"a":
0.3}}``) or RMIA is left out (and the report says why).

**Attack sample** (optional Parquet, e.g. a pipeline's ``attack_samples/n<N>.parquet``):
``sample_id`` and ``fold`` (``attack_train`` or ``attack_test``), optionally ``label`` and
``member`` (which must agree with the target); each fold must hold as many members as
non-members of every class. Without it the audit draws one exactly as the pipeline does
(:func:`~lottery_mia.attack_samples.make_attack_sample` with ``sample_size``, ``seed`` and
``test_fraction``, over the target's rows in their order): n/2 members and n/2
non-members, class-stratified, in two disjoint folds. The default n uses every
member/non-member pair of the same class, at most :data:`DEFAULT_MAX_SAMPLE` rows.

What runs
=========

Every attack the inputs allow (or those of ``attacks``): the classifier attacks (``mlp``,
the paper's, ``svm``, ``random_forest``, ``logistic_regression``, ``gradient_boosting``:
fit on the attack-train fold, evaluated on the attack-test fold) and the threshold attacks
(``loss``, ``confidence``, ``entropy``, ``modified_entropy``: threshold chosen on
attack-train, evaluated on attack-test); with references also ``lira_online``,
``lira_offline``, ``rmia`` and ``shadow_mlp``, evaluated on every row of the target that
their references can judge (IN for some reference and OUT for another; the others are
left out, counted in ``n_unjudged`` with the reason, and their scores are nan), less the
attack-train rows where their threshold is placed (they learn nothing from the target's
membership; ``same_rows_*`` gives them on the judged attack-test rows). RMIA's population samples are the
target's non-members, as in the pipeline. Every metric carries a 95% percentile-bootstrap
interval (``n_bootstrap`` resamples, members and non-members resampled separately); a TPR
at FPR x is reported only where at least 10 non-members lie above its threshold
(:mod:`lottery_mia.stats.metrics`). ``seed`` seeds the attack sample, the attack models and the
bootstrap, as ``attack.seed`` does in the pipeline; ``attack_settings`` are the
``attack.<name>`` blocks of the pipeline's config.

Outputs (in ``out_dir``)
========================

- ``attacks.csv``: one row per attack: every metric with ``_ci_low``/``_ci_high``,
  ``n_eval_members``, ``n_eval_nonmembers``, ``min_fpr``, ``n_references`` (K, reference
  attacks), the verdicts against chance, the attack's own details;
- ``scores.parquet``: every attack's score of every row (``score_<attack>``; higher = more
  likely a member) with ``sample_id``, ``label``, ``member``, ``fold``, ``correct``;
- ``metrics.json``: the result rows in the pipeline's ``metrics.json`` form;
- ``roc.png``: log-log ROC curves, a panel per kind of attack;
- ``report.html``: one self-contained page (``templates/audit.html.j2``): the inputs, the
  attacks table, the figure;
- ``audit.json``: the inputs, settings and skipped attacks, for scripts.
"""

from __future__ import annotations

from .inputs import (DEFAULT_MAX_SAMPLE, KIND_ORDER, AuditInputError, References,
                     attack_sample_for, plan_attacks, read_references, read_target)
from .report import attacks_view, draw_roc, headline, write_report
from .run import AuditResult, attacks_frame, audit, describe_inputs, run_audit_attacks

__all__ = ["audit", "AuditResult", "AuditInputError", "read_target", "read_references",
           "attack_sample_for", "plan_attacks", "run_audit_attacks", "DEFAULT_MAX_SAMPLE",
           "KIND_ORDER", "References", "attacks_view", "attacks_frame", "describe_inputs",
           "draw_roc", "headline", "write_report"]
