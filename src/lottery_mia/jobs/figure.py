"""The figure job of the DAG (rule ``figure``, one per registered figure): read what the
figure asks for and draw it (:mod:`lottery_mia.figures`)."""

from __future__ import annotations

from ..figures import FIGURES, FigureData
from ..io import log, read_json
from ..reporting.summaries import (SCORES_IDENTITY, read_attacks_csv, read_scores,
                                   read_slices_csv, read_training_csv, read_transfer_csv)

__all__ = ["draw_figure", "read_summary_table"]

def read_verdicts_csv(path):
    from ..io import read_csv_table

    return read_csv_table(path, "verdict table", remedy="delete it and rerun the tables rule")


READERS = {"training": read_training_csv, "attacks": read_attacks_csv,
           "transfer": read_transfer_csv, "slices": read_slices_csv,
           "gap_correlation": read_json, "verdicts": read_verdicts_csv}


def read_summary_table(name: str, path):
    """A summary table by its name (a DataFrame; a dict for JSON)."""
    return READERS[name](path)


def draw_figure(name: str, *, tables: dict, scores: list, models: list, params: dict,
                output):
    """Draw figure ``name``: ``tables`` (summary table name -> path), ``scores`` (the score
    files of ``models``, dicts of the models' keys, in the same order: every row is handed
    over with its ``fold``; a figure picks the rows an attack is evaluated on with
    :func:`lottery_mia.vocabulary.evaluated`), ``params`` (the report settings it asked
    for)."""
    spec = FIGURES.get_entry(name)
    data = FigureData(params=dict(params))
    for table, path in tables.items():
        data.tables[table] = read_summary_table(table, path)
    for path, model in zip(scores, models, strict=True):
        s = read_scores(path, {k: model[k] for k in SCORES_IDENTITY if k in model})
        row = {k: v for k, v in dict(model).items() if k != "path"}
        row["member"] = s["member"].to_numpy()
        row["fold"] = s["fold"].to_numpy()
        for col in s.columns:
            if col.startswith("score_"):
                row[col] = s[col].to_numpy()
        data.scores.append(row)
    fig = spec.draw(data, output)
    log(f"{spec.title} -> {output}")
    return fig
