"""The report job of the DAG (rule ``report``): ``results/report.html``, one self-contained
page rendered from ``templates/report.html.j2``: Table 1, the verdicts, the attack-model
table, the methods section, every registered figure (in figure order, each with its title,
caption and note), the summary tables and the run's configuration."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from ..figures import figure_specs
from ..io import atomic_write_bytes, log, read_csv_table, read_json
from ..reporting.report import (attack_models_view, attacks_view, benchmark_view, CSS, data_uri, html_table,
                      method_accuracy_view, method_verdicts_view, models_each_view,
                      pair_verdicts_view, defence_verdicts_view,
                      models_mean_view, plain, render_template, slices_view, table1_view,
                      transfer_view, unmeasurable_note, verdicts_view)
from ..reporting.answer import (defence_summary, pair_summary, scope_sentences,
                                strongest_attacks)
from ..reporting.verdicts import PAIR_THREAT
from ..reporting.summaries import (read_attacks_csv, read_slices_csv, read_training_csv,
                         read_transfer_csv)

__all__ = ["write_report", "render"]


def _csv(path, what):
    return read_csv_table(path, what, remedy="delete it and rerun the workflow")


def write_report(*, summary: dict, report_tables: dict, figures: dict, config: dict,
                 values: dict, methods: list, output) -> None:
    """``summary``: the summary tables by name (training, attacks, transfer, slices,
    benchmarks, gap_correlation); ``report_tables``: table1_csv, verdicts, attack_models,
    method_verdicts, pair_verdicts, defence_verdicts; ``figures``: figure name -> PNG; ``values``: the report settings
    (:meth:`lottery_mia.plan.Plan.report_values`); ``methods``: {name, kind, description}
    of the dense network and every configured method."""
    import yaml

    training = read_training_csv(summary["training"])
    attacks = read_attacks_csv(summary["attacks"])
    tables = {"training": training, "attacks": attacks,
              "transfer": read_transfer_csv(summary["transfer"]),
              "slices": read_slices_csv(summary["slices"]),
              "gap_correlation": read_json(summary["gap_correlation"])}
    verdicts = _csv(report_tables["verdicts"], "verdict table")
    mv = _csv(report_tables["method_verdicts"], "method verdict table")
    pv = _csv(report_tables["pair_verdicts"], "pair verdict table") \
        if report_tables.get("pair_verdicts") else pd.DataFrame()
    dv = _csv(report_tables["defence_verdicts"], "defence verdict table") \
        if report_tables.get("defence_verdicts") else pd.DataFrame()
    methods = [plain(m) for m in methods]
    kinds = {str(m.get("name")): str(m.get("kind")) for m in methods}
    bench = summary.get("benchmarks")
    models_view = attack_models_view(_csv(report_tables["attack_models"], "attack-model table"))
    context = {
        "css": CSS, "generated": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "replicates": sorted(training["replicate"].unique().tolist()),
        "values": plain(values),
        "table1": html_table(table1_view(_csv(report_tables["table1_csv"], "Table 1"))),
        "verdicts": list(verdicts["sentence"]) if len(verdicts) else [],
        "primary": list(verdicts.loc[verdicts["primary"], "sentence"]) if len(verdicts)
        else [],
        "primary_table": html_table(verdicts_view(verdicts[verdicts["primary"]]))
        if len(verdicts) and verdicts["primary"].any() else "",
        "verdict_table": html_table(verdicts_view(verdicts[~verdicts["primary"]]))
        if len(verdicts) and (~verdicts["primary"]).any() else "",
        "claim": claim_summary(verdicts, values),
        "strongest": strongest_attacks(attacks, plain(values)),
        "scope": scope_sentences(verdicts, training, plain(values)),
        "attack_models": html_table(models_view),
        "attack_models_note": unmeasurable_note(models_view),
        "methods": methods,
        "method_accuracy": html_table(method_accuracy_view(training, kinds))
        if len(training) else "",
        "method_verdicts": html_table(method_verdicts_view(mv, attacks)) if len(mv) else "",
        "method_sentences": list(mv["sentence"]) if len(mv) else [],
        "pair_claim": pair_summary(pv), "pair_threat": PAIR_THREAT,
        "pair_verdicts": html_table(pair_verdicts_view(pv)) if len(pv) else "",
        "pair_sentences": list(pv["sentence"]) if len(pv) else [],
        "defence_claim": defence_summary(dv),
        "defence_verdicts": html_table(defence_verdicts_view(dv)) if len(dv) else "",
        "defence_sentences": list(dv["sentence"]) if len(dv) else [],
        "figures": [{"title": f.title, "caption": f.caption, "file": Path(figures[f.name]).name,
                     "data_uri": data_uri(figures[f.name]),
                     "note": f.note(tables) if f.note else ""}
                    for f in figure_specs() if f.name in figures],
        "models_mean": html_table(models_mean_view(training)),
        "models_each": html_table(models_each_view(training)),
        "attacks": html_table(attacks_view(attacks)),
        "slices": html_table(slices_view(tables["slices"])),
        "transfer": html_table(transfer_view(tables["transfer"])),
        "benchmarks": html_table(benchmark_view(pd.read_csv(bench)), "{:.1f}")
        if bench and Path(bench).exists() else "",
        "config_text": yaml.safe_dump(plain(config), sort_keys=False),
    }
    atomic_write_bytes(render(context).encode(), output)
    log(f"wrote {output}")


def claim_summary(verdicts: pd.DataFrame, values: dict) -> str:
    """What the run says about the paper's claim: the primary comparisons' verdicts."""
    if verdicts is None or verdicts.empty or not verdicts["primary"].any():
        return ""
    rows = verdicts[verdicts["primary"]]
    counts = rows["verdict"].value_counts().to_dict()
    n = len(rows)
    p = values.get("primary", {})
    what = f"{', '.join(sorted(set(rows['attack'])))} attack {p.get('metric', 'auc')}"
    parts = [f"supported (equivalent within the margin) for {counts.get('equivalent', 0)} "
             f"of {n} pruned networks",
             f"contradicted for {counts.get('leaks_more', 0) + counts.get('leaks_less', 0)} "
             f"(leaks more: {counts.get('leaks_more', 0)}, less: "
             f"{counts.get('leaks_less', 0)})",
             f"not decided for {counts.get('inconclusive', 0)}"]
    few = int((rows["scope"] == "these networks").sum())
    scope = ("over training seeds and the attack rows" if not few else
             f"{few} of them with fewer than 3 training seeds, which decide nothing")
    return f"{what}: " + "; ".join(parts) + f"; {scope}."


def render(context: dict) -> str:
    """The report page from its template (:func:`lottery_mia.reporting.report.render_template`)."""
    return render_template("report.html.j2", context)
