"""A reference model's rows as the reference attacks read them, without its n x C logits.

LiRA reads one scaled logit per row and view, RMIA one log-probability of the true class per
row, and the shadow attacks (the shadow MLP, SAMIA) the confidence vectors (and SAMIA the
sensitivities) of at most ``max_rows`` rows they sample by inclusion alone. Holding every reference's full table instead costs K x n x C floats: at
ImageNet's scale (K = 16 references, 50k attack rows and as many population rows, 1000
classes) 6.4 GB of float32 logits, before any attack runs. A :class:`ReferenceRows` keeps the
per-row statistics (computed exactly as from the table) and reads the logits of the rows an
attack asks for back from the table's file, one reference at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..confidences import ConfidenceTable, read_confidences


@dataclass
class ReferenceRows:
    sample_id: np.ndarray
    label: np.ndarray
    member: np.ndarray
    phi_views: np.ndarray  # (n, views) float64: LiRA's scaled logit of each scored view
    log_p_true: np.ndarray  # (n,) float64: log P(true class), RMIA's statistic
    source: Path | ConfidenceTable  # where the logits of these rows are read back from
    positions: np.ndarray  # each row's position in ``source``

    @classmethod
    def of(cls, table: ConfidenceTable, sample_ids, source) -> "ReferenceRows":
        """The rows ``sample_ids`` of ``table`` (read from ``source``, a path, or the table
        itself when it has no file), in that order; a missing id is a KeyError."""
        idx = table.positions(sample_ids)
        part = table.take(idx)
        lp = part.log_probs[np.arange(len(part)), part.label]
        return cls(part.sample_id, part.label, part.member,
                   np.ascontiguousarray(part.scaled_logit_views(), dtype=np.float64),
                   np.ascontiguousarray(lp, dtype=np.float64),
                   table if source is None else Path(source), idx)

    def __len__(self) -> int:
        return len(self.sample_id)

    def scaled_logit_views(self) -> np.ndarray:
        return self.phi_views

    def _source_table(self) -> ConfidenceTable:
        return self.source if isinstance(self.source, ConfidenceTable) \
            else read_confidences(self.source)

    def logits_at(self, rows) -> np.ndarray:
        """The logits (float32, len(rows) x C) of these rows, read back from the source."""
        rows = np.asarray(rows, dtype=np.int64)
        return np.ascontiguousarray(self._source_table().logits[self.positions[rows]])

    def take(self, rows) -> ConfidenceTable:
        """These rows (positions in this object) as a confidence table, with the source's
        sensitivity when it has one: what the shadow attacks compute their features from."""
        rows = np.asarray(rows, dtype=np.int64)
        table, at = self._source_table(), self.positions[rows]
        return ConfidenceTable.from_logits(
            self.sample_id[rows], self.label[rows], self.member[rows],
            np.ascontiguousarray(table.logits[at]), table.metadata,
            sensitivity=None if table.sensitivity is None else table.sensitivity[at])
