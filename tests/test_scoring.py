"""Scoring: float32 logits, and LiRA's scaled logit averaged over the flipped view."""

from __future__ import annotations

import numpy as np
import pytest

from lottery_mia.confidences import read_confidences, scaled_logit_of
from lottery_mia.jobs.score import extract_confidences


@pytest.mark.parametrize("augmentations", [1, 2])
def test_scaled_logit_column_is_the_average_over_scored_views(trained_digits, tmp_path,
                                                              augmentations):
    import torch

    from lottery_mia.checkpoints import load_checkpoint
    from lottery_mia.data import rows_image_set
    from lottery_mia.membership import read_membership

    d, data = trained_digits["dir"], trained_digits["data"]
    out = tmp_path / "c.parquet"
    extract_confidences(data=data, model_path=d / "model.pt", dataset="digits",
                        arch="resnet18", sparsity=0.0, device="cpu", batch_size=256,
                        output=out, threads=1, num_workers=0, augmentations=augmentations)
    t = read_confidences(out)
    assert t.logits.dtype == np.float32 and t.metadata["augmentations"] == augmentations
    plain = scaled_logit_of(t.logits, t.label)
    if augmentations == 1:
        np.testing.assert_allclose(t.scaled_logit(), plain)
        return
    model, _ = load_checkpoint(d / "model.pt")
    model.eval()
    table = read_membership(data.membership).set_index("sample_id").loc[t.sample_id]
    ds = rows_image_set("digits", None, table.reset_index(), key="k", num_workers=0)
    with torch.no_grad():
        flipped = torch.cat([model(xb.flip(-1)) for xb, _ in ds.eval_batches(256)]).numpy()
    want = (plain + scaled_logit_of(flipped, t.label)) / 2
    np.testing.assert_allclose(t.scaled_logit(), want, rtol=1e-5, atol=1e-5)
    assert not np.allclose(t.scaled_logit(), plain)  # the flipped view does change it


def test_augmentations_other_than_one_or_two_are_refused(trained_digits, tmp_path):
    with pytest.raises(ValueError, match="confidences.augmentations"):
        extract_confidences(data=trained_digits["data"],
                            model_path=trained_digits["dir"] / "model.pt", dataset="digits",
                            arch="resnet18", sparsity=0.0, device="cpu", batch_size=256,
                            output=tmp_path / "c.parquet", augmentations=3)


def test_the_scoring_job_stores_half_precision_logits_when_asked(trained_digits, tmp_path):
    """confidences.logits_dtype float16: the job writes the logits column as float16 (half
    the bytes) and they read back as float32 within float16's rounding of the float32 run."""
    import pyarrow.parquet as pq

    out = {}
    for dtype in ("float32", "float16"):
        out[dtype] = tmp_path / f"{dtype}.parquet"
        extract_confidences(data=trained_digits["data"],
                            model_path=trained_digits["dir"] / "model.pt", dataset="digits",
                            arch="resnet18", sparsity=0.0, device="cpu", batch_size=256,
                            output=out[dtype], threads=1, num_workers=0,
                            logits_dtype=dtype)
    field = pq.read_schema(out["float16"]).field("logits")
    assert str(field.type.value_type) == "halffloat"
    full, half = read_confidences(out["float32"]), read_confidences(out["float16"])
    assert half.logits.dtype == np.float32
    np.testing.assert_array_equal(half.sample_id, full.sample_id)
    np.testing.assert_allclose(half.logits, full.logits.astype(np.float16), rtol=0, atol=0)
    assert not np.array_equal(half.logits, full.logits)  # it was rounded
