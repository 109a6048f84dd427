"""The report-table jobs of the DAG: Table 1, the verdicts and the attack-model table (rule
``tables``), and the per-class / per-correctness slices (rule ``slices``)."""

from __future__ import annotations

import pandas as pd

from ..io import atomic_write_bytes, write_csv
from ..reporting.summaries import read_attacks_csv, read_training_csv
from ..reporting.tables import attack_model_table, slices, table1, table1_markdown
from ..reporting.protection import defence_verdicts
from ..reporting.verdicts import method_verdicts, pair_verdicts, verdict_rows

__all__ = ["write_tables", "write_slices"]


def write_tables(*, attacks_csv, score_paths, arch: str, ticket_sparsity: float,
                 attack: str, method: str, margins: dict, primary: dict, n_bootstrap: int,
                 seed: int, out_table1_csv, out_table1_md, out_verdicts, out_attack_models,
                 verdict_attacks: list | None = None, training_csv=None, method_groups=None,
                 method_kinds: dict | None = None, out_method_verdicts=None,
                 out_pair_verdicts=None, out_defence_verdicts=None,
                 defences: dict | None = None, defence_bases: dict | None = None) -> None:
    """Table 1 (csv, markdown), the pruned-vs-dense verdicts of every model in
    ``score_paths`` (groups of every model and sample size; the primary comparisons of
    ``primary`` first), the attack-model table and, given ``out_method_verdicts``, the
    ticket-vs-control verdicts of ``method_groups``, given ``out_pair_verdicts`` the pair
    attacks against the single networks (:func:`pair_verdicts`), given
    ``out_defence_verdicts`` whether each defended ticket keeps its defence's protection
    (:func:`defence_verdicts`, from ``defences`` and ``defence_bases``)."""
    attacks = read_attacks_csv(attacks_csv)
    training = read_training_csv(training_csv) if training_csv is not None else None
    t1 = table1(attacks, arch, ticket_sparsity, attack, method, training)
    write_csv(t1, out_table1_csv)
    atomic_write_bytes(table1_markdown(t1, arch, ticket_sparsity, method).encode(),
                       out_table1_md)
    names = list(dict.fromkeys([attack] + list(verdict_attacks or [])))
    verdicts = verdict_rows(attacks, training, list(score_paths), method_kinds, names,
                            primary, margins, n_bootstrap, seed)
    write_csv(verdicts, out_verdicts)
    if out_defence_verdicts is not None:
        write_csv(defence_verdicts(verdicts, dict(defences or {}), dict(defence_bases or {}),
                                   training), out_defence_verdicts)
    write_csv(attack_model_table(attacks, arch, ticket_sparsity, method), out_attack_models)
    if out_method_verdicts is not None:
        mv = method_verdicts(attacks, training, list(method_groups or []),
                             dict(method_kinds or {}), names, n_bootstrap, seed, margins)
        write_csv(mv, out_method_verdicts)
    if out_pair_verdicts is not None:
        write_csv(pair_verdicts(attacks, list(score_paths), margins, n_bootstrap, seed),
                  out_pair_verdicts)


def write_slices(*, attacks_csv, score_paths, slice_attacks: list[str],
                 n_bootstrap: int, seed: int, output) -> pd.DataFrame:
    """Per-class and correct/incorrect slices of ``slice_attacks`` on the given models."""
    attacks = read_attacks_csv(attacks_csv)
    frame = slices(score_paths, attacks, slice_attacks, n_bootstrap, seed)
    write_csv(frame, output)
    return frame
