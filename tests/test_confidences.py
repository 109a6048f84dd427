"""The confidence table (lottery_mia.confidences): its schema, logits kept, scores derived
stably from them."""

from __future__ import annotations

import json

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


# --------------------------------------------------------------------------- storage (issue 17)
def _earlier_layout(t: ConfidenceTable, path, augmentations: int = 1) -> dict:
    """Write ``t`` as the writer before issue 17 did (logits, softmax, loss, predicted and
    the scaled logit all stored) and return what it stored."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    c = t.logits.shape[1]
    stored = {"predicted": t.logits.argmax(1).astype(np.int64), "loss": t.loss,
              "softmax": np.exp(t.log_probs).astype(np.float32),
              "scaled_logit": t.scaled_logit().astype(np.float64)}

    def fixed(a, typ=pa.float32(), dtype=np.float32):
        return pa.FixedSizeListArray.from_arrays(
            pa.array(np.ascontiguousarray(a, dtype=dtype).ravel(), typ), a.shape[1])

    schema = pa.schema([("sample_id", pa.int64()), ("label", pa.int64()),
                        ("member", pa.bool_()), ("predicted", pa.int64()),
                        ("loss", pa.float64()), ("logits", pa.list_(pa.float32(), c)),
                        ("softmax", pa.list_(pa.float32(), c)), ("scaled_logit", pa.float64())])
    schema = schema.with_metadata({"lottery_mia": json.dumps(
        {**t.metadata, "augmentations": augmentations})})
    table = pa.Table.from_arrays([
        pa.array(t.sample_id), pa.array(t.label), pa.array(t.member),
        pa.array(stored["predicted"]), pa.array(stored["loss"]), fixed(t.logits),
        fixed(stored["softmax"]), pa.array(stored["scaled_logit"])], schema=schema)
    if t.phi_views is not None and t.phi_views.shape[1] > 1:
        table = table.append_column("scaled_logit_views",
                                    fixed(t.phi_views, pa.float64(), np.float64))
    pq.write_table(table, path)
    return stored


def _logit_rows(n=300, classes=12, seed=0, views=False, scale=8.0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, scale, (n, classes)).astype(np.float32)
    logits[: n // 10, 0] += 90.0  # saturated rows: p_y rounds to 1 in float32
    label = rng.integers(0, classes, n)
    phi_views = None
    if views:
        from lottery_mia.confidences import scaled_logit_of

        flipped = logits + rng.normal(0, 0.5, logits.shape).astype(np.float32)
        phi_views = np.stack([scaled_logit_of(logits, label), scaled_logit_of(flipped, label)], 1)
    return ConfidenceTable.from_logits(np.arange(n) * 3, label, np.arange(n) % 2 == 0, logits,
                                       {"dataset": "d", "arch": "resnet18"},
                                       phi_views=phi_views)


@pytest.mark.parametrize("views", [False, True])
def test_values_derived_on_read_equal_the_columns_the_earlier_layout_stored(tmp_path, views):
    import pyarrow.parquet as pq

    t = _logit_rows(views=views)
    stored = _earlier_layout(t, tmp_path / "old.parquet", augmentations=2 if views else 1)
    write_confidences(t, tmp_path / "new.parquet")
    assert "softmax" not in pq.read_schema(tmp_path / "new.parquet").names
    for name in ("old.parquet", "new.parquet"):  # earlier tables are still read
        back = read_confidences(tmp_path / name)
        np.testing.assert_array_equal(back.logits, t.logits)
        np.testing.assert_array_equal(back.predicted, stored["predicted"])
        np.testing.assert_array_equal(back.loss, stored["loss"])
        np.testing.assert_array_equal(back.softmax, stored["softmax"])
        np.testing.assert_array_equal(back.scaled_logit(), stored["scaled_logit"])
        if views:
            np.testing.assert_array_equal(back.scaled_logit_views(), t.phi_views)
        else:
            assert back.phi is None and back.scaled_logit_views().shape == (len(t), 1)
    assert (back.loss[: len(t) // 10] > 0).all()  # derived in float64: never saturated


def test_an_averaged_scaled_logit_without_its_views_is_kept(tmp_path):
    """The scoring job of today hands over the two views' mean only: it is not derivable from
    the original view's logits, so it is stored."""
    import pyarrow.parquet as pq

    t = _logit_rows(views=True)
    mean_only = ConfidenceTable.from_logits(t.sample_id, t.label, t.member, t.logits,
                                            t.metadata, phi=t.phi_views.mean(1))
    write_confidences(mean_only, tmp_path / "c.parquet")
    assert pq.read_schema(tmp_path / "c.parquet").names[-1] == "scaled_logit"
    back = read_confidences(tmp_path / "c.parquet")
    np.testing.assert_array_equal(back.scaled_logit(), t.phi_views.mean(1))
    from lottery_mia.confidences import scaled_logit_of

    assert not np.allclose(back.scaled_logit(), scaled_logit_of(t.logits, t.label))
    write_confidences(t, tmp_path / "v.parquet")  # with its views: the mean is not repeated
    assert "scaled_logit" not in pq.read_schema(tmp_path / "v.parquet").names


def _bytes_per_row(tmp_path, t, **kw) -> float:
    write_confidences(t, tmp_path / "size.parquet", **kw)
    return (tmp_path / "size.parquet").stat().st_size / len(t)


def test_a_row_costs_at_most_4_1_kb_at_1000_classes(tmp_path):
    """The earlier layout (logits and softmax, float32) cost 8,156 bytes per row here."""
    t = _logit_rows(n=2000, classes=1000, views=True, scale=3.0)
    assert _bytes_per_row(tmp_path, t) <= 4100
    plain = ConfidenceTable.from_logits(t.sample_id, t.label, t.member, t.logits)
    assert _bytes_per_row(tmp_path, plain) <= 4100
    assert _bytes_per_row(tmp_path, plain, logits_dtype="float16") <= 2100
    assert _bytes_per_row(tmp_path, plain, logits_dtype="bfloat16") <= 2100


@pytest.mark.parametrize("dtype, rel", [("float16", 2.0**-11), ("bfloat16", 2.0**-8)])
def test_half_precision_logits_round_to_nearest_and_read_back_as_float32(tmp_path, dtype, rel):
    from lottery_mia.confidences import stored_logits

    t = _logit_rows(scale=4.0)
    write_confidences(t, tmp_path / "h.parquet", logits_dtype=dtype)
    back = read_confidences(tmp_path / "h.parquet")
    assert back.logits.dtype == np.float32
    np.testing.assert_array_equal(back.logits, stored_logits(t.logits, dtype))
    err = np.abs(back.logits - t.logits)
    assert (err <= rel * np.abs(t.logits) + 1e-7).all()  # round to nearest: half an ulp
    assert err.max() > 0  # it did round


def test_bfloat16_rounds_half_to_even():
    from lottery_mia.confidences import from_bfloat16_bits, to_bfloat16_bits

    one_ulp = 2.0**-7  # bfloat16's spacing at 1.0
    x = np.array([1.0, 1 + one_ulp / 2, 1 + 3 * one_ulp / 2, 1 + one_ulp / 2 + 2**-20, -2.5],
                 dtype=np.float32)
    np.testing.assert_array_equal(from_bfloat16_bits(to_bfloat16_bits(x)),
                                  np.array([1.0, 1.0, 1 + 2 * one_ulp, 1 + one_ulp, -2.5],
                                           dtype=np.float32))


def test_float16_refuses_logits_beyond_its_range(tmp_path):
    t = ConfidenceTable.from_logits([0, 1], [0, 1], [True, False],
                                    np.array([[7e4, 0.0], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="float16's range.*bfloat16"):
        write_confidences(t, tmp_path / "x.parquet", logits_dtype="float16")
    write_confidences(t, tmp_path / "x.parquet", logits_dtype="bfloat16")
