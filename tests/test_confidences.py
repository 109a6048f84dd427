"""The confidence table (lottery_mia.confidences): its schema, logits kept, scores derived
stably from them."""

from __future__ import annotations

import numpy as np
import pytest

from lottery_mia.confidences import ConfidenceTable, read_confidences, write_confidences
from test_attacks import synthetic_table


def test_confidence_table_roundtrip_keeps_logits_and_unsaturated_loss(tmp_path):
    t = synthetic_table(separable=True, shift=60.0)  # p_y rounds to 1.0 in float32
    write_confidences(t, tmp_path / "c.parquet")
    back = read_confidences(tmp_path / "c.parquet")
    np.testing.assert_array_equal(back.logits, t.logits)
    np.testing.assert_array_equal(back.member, t.member)
    assert back.metadata["arch"] == "resnet18"
    assert (back.softmax.max(1) == 1.0).mean() > 0.4  # the float32 softmax saturates ...
    assert (back.loss[back.member] > 0).all()  # ... the loss from the logits does not
    import pyarrow.parquet as pq

    schema = pq.read_schema(tmp_path / "c.parquet")
    assert str(schema.field("logits").type) == "fixed_size_list<element: float>[10]"
    rows = back.rows(np.array([5, 1]))
    assert list(rows.sample_id) == [5, 1]



def test_scaled_logit_is_stable_and_exact():
    logits = np.array([[2.0, 0.5, -1.0], [80.0, 0.0, 0.0]])
    t = ConfidenceTable.from_logits([0, 1], [0, 0], [True, False], logits)
    p = np.exp(logits[0]) / np.exp(logits[0]).sum()
    assert t.scaled_logit()[0] == pytest.approx(np.log(p[0] / (1 - p[0])))
    assert t.scaled_logit()[1] == pytest.approx(80.0 - np.log(2.0))  # no overflow to inf
