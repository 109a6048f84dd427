"""The quantile-regression attack (:mod:`lottery_mia.attacks.quantile`): no reference model,
a regressor of a non-member's hinge score given the input, fit on the target's scored
non-members outside the attack sample. Null tests through the pipeline's readers (tables and
input features written and read back, :func:`evaluate_attacks`): with no membership effect,
mean AUC 0.50 +- 0.01 and TPR at 10% FPR <= 0.12 over 30 repetitions; a known effect under
an input-driven difficulty is found, better than the loss attack that cannot calibrate per
input; the thumbnails are the images', and the input_features table round-trips."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lottery_mia.attack_samples import make_attack_sample
from lottery_mia.attacks import attack_data, evaluate_attacks
from lottery_mia.attacks.quantile import QuantileAttack, class_means, hinge
from lottery_mia.confidences import ConfidenceTable, write_confidences
from lottery_mia.jobs.split import read_input_features

REPETITIONS = 30
SETTINGS = {"quantile": {"max_iter": 50}}


def write_features(path, ids, labels, x):
    flat = pa.array(np.ascontiguousarray(x, dtype=np.float32).ravel())
    pq.write_table(pa.table({"sample_id": pa.array(ids), "label": pa.array(labels),
                             "features": pa.FixedSizeListArray.from_arrays(flat, x.shape[1])}),
                   path)


def world(seed: int, tmp, effect: float = 0.0, members: int = 250, nonmembers: int = 750,
          sample_size: int = 500, classes: int = 10, features: int = 16):
    """The default geometry: a target whose true-class logit is driven by its input
    (a difficulty the regressor can learn from the thumbnail) and raised by ``effect`` on
    its members; written and read back as the fit-attack job does."""
    rng = np.random.default_rng(seed)
    n = members + nonmembers
    ids = np.arange(n, dtype=np.int64)
    labels = rng.integers(0, classes, n)
    member = np.zeros(n, bool)
    member[rng.permutation(n)[:members]] = True
    x = rng.random((n, features)).astype(np.float32)
    difficulty = 6.0 * x[:, 0] - 3.0 * x[:, 1] + 2.0 * np.sin(6.0 * x[:, 2])
    logits = rng.normal(0.0, 1.0, (n, classes))
    logits[ids, labels] += difficulty + effect * member + rng.normal(0.0, 0.7, n)
    meta = {"dataset": "digits", "arch": "resnet18", "method": "dense", "sparsity": 0.0}
    write_confidences(ConfidenceTable.from_logits(ids, labels, member, logits, meta),
                      tmp / "target.parquet")
    write_features(tmp / "features.parquet", ids, labels, x)
    membership = pd.DataFrame({"sample_id": ids, "pool": "all", "pool_index": ids,
                               "label": labels, "member": member, "scored": True})
    make_attack_sample(membership, sample_size, seed).to_parquet(tmp / "sample.parquet",
                                                                 index=False)
    data = attack_data(tmp / "target.parquet", tmp / "sample.parquet", "softmax",
                       all_rows=True)
    data.inputs = read_input_features(tmp / "features.parquet",
                                      data.sample["sample_id"].to_numpy())
    return data


def run(tmp_path_factory, reps, attacks, **kw):
    out = {a: [] for a in attacks}
    for rep in range(reps):
        data = world(rep, tmp_path_factory.mktemp(f"q{rep}"), **kw)
        rows, _ = evaluate_attacks(data, attacks, SETTINGS, seed=rep, n_bootstrap=50)
        for r in rows:
            out[r["attack"]].append(r)
    return {a: pd.DataFrame(v) for a, v in out.items()}


@pytest.mark.slow
def test_quantile_attack_is_at_chance_without_membership(tmp_path_factory):
    r = run(tmp_path_factory, REPETITIONS, ["quantile"])["quantile"]
    assert abs(r["auc"].mean() - 0.5) <= 0.01, r["auc"].mean()
    assert abs(r["accuracy"].mean() - 0.5) <= 0.02, r["accuracy"].mean()
    tpr = r["tpr_at_fpr_0.1"].dropna()
    assert len(tpr) >= REPETITIONS // 2 and tpr.mean() <= 0.12, tpr.mean()
    assert (r["public_rows"] == 500).all()  # the 750 - 250 non-members outside the sample


@pytest.mark.slow
def test_quantile_attack_calibrates_per_input(tmp_path_factory):
    runs = run(tmp_path_factory, 3, ["quantile", "loss"], effect=1.5)
    q, loss = runs["quantile"]["auc"].mean(), runs["loss"]["auc"].mean()
    assert q > 0.6 and q > loss + 0.05, (q, loss)


def test_public_rows_are_non_members_outside_the_sample_only(tmp_path):
    data = world(0, tmp_path)
    fold = data.sample["fold"].to_numpy()
    seen = {}

    class Spy(QuantileAttack):
        def _regressor(self, loss):
            reg = super()._regressor(loss)
            fit = reg.fit

            def spy_fit(x, y):
                seen.setdefault("rows", []).append(len(x))
                return fit(x, y)
            reg.fit = spy_fit
            return reg

    out = Spy({"max_iter": 20}, 0).fit_score(data)
    public = (fold == "outside") & ~data.is_member
    assert max(seen["rows"]) == int(public.sum()) == out.info["public_rows"]
    assert np.isfinite(out.score).all()
    with pytest.raises(ValueError, match="min_public"):
        QuantileAttack({"min_public": 10_000}, 0).fit_score(data)
    data.inputs = None
    with pytest.raises(ValueError, match="input features"):
        QuantileAttack(None, 0).fit_score(data)


@pytest.mark.parametrize("bad", [{"folds": 1}, {"max_iter": 0}, {"learning_rate": -1},
                                 {"max_depth": 2.5}, {"trees": 3}, {"folds": True}])
def test_bad_settings_name_the_key(bad):
    with pytest.raises(ValueError, match="attack.quantile"):
        QuantileAttack(bad, 0)


def test_hinge_and_class_means():
    logits = np.array([[3.0, 1.0, 2.0], [0.0, 5.0, 1.0], [1.0, 1.0, 4.0]], np.float32)
    label = np.array([0, 0, 2])
    assert hinge(logits, label, chunk=2).tolist() == [1.0, -5.0, 3.0]
    s = np.array([1.0, 3.0, 5.0, 7.0])
    lab = np.array([0, 0, 1, 1])
    pub = np.array([True, True, True, False])
    m = class_means(s, lab, pub)
    overall = 3.0
    assert m[0] == pytest.approx((3.0 + 10 * overall) / 11)  # its own score left out
    assert m[3] == pytest.approx((5.0 + 10 * overall) / 11)  # not public: the class's


def test_thumbnails_are_block_means_of_the_images(tmp_path):
    from conftest import write_tiny_cifar
    from lottery_mia.datasets import dataset_source
    from lottery_mia.datasets.digits import digits_arrays

    digits = dataset_source("digits")
    t = digits.thumbnails(None, "all", [0, 5])
    images, _ = digits_arrays()
    want = np.rint(images[[0, 5]] * (255 / 16)).reshape(2, -1) / 255
    assert t.shape == (2, 64) and np.allclose(t, want, atol=1e-6) and t.flags.c_contiguous
    root = write_tiny_cifar(tmp_path)
    cifar = dataset_source("cifar10")
    x, _ = cifar.load_pool(root, "train")
    t = cifar.thumbnails(root, "train", [3])
    assert t.shape == (1, 3 * 8 * 8)
    block = x[3, 1, 4:8, 8:12].astype(np.float64).mean() / 255  # channel 1, row 1, col 2
    assert t[0].reshape(3, 8, 8)[1, 1, 2] == pytest.approx(block, abs=1e-6)


def test_input_features_job_writes_every_scored_sample(tmp_path):
    from lottery_mia.jobs.split import build_input_features
    from lottery_mia.membership import write_membership

    membership = pd.DataFrame({"sample_id": np.arange(6, dtype=np.int64), "pool": "all",
                               "pool_index": np.array([0, 1, 2, 3, 4, 5]),
                               "label": np.array([0, 1, 2, 3, 4, 5]),
                               "member": [True, False] * 3,
                               "scored": [True, True, True, True, False, True]})
    write_membership(membership, tmp_path / "m.parquet")
    build_input_features(membership_path=tmp_path / "m.parquet", source="digits", root=None,
                         key="datasets.digits.root", size=8, output=tmp_path / "f.parquet")
    x = read_input_features(tmp_path / "f.parquet", [5, 0])
    assert x.shape == (2, 64)
    from lottery_mia.datasets import dataset_source

    assert np.allclose(x, dataset_source("digits").thumbnails(None, "all", [5, 0]))
    with pytest.raises(ValueError, match="no features of sample_id 4"):
        read_input_features(tmp_path / "f.parquet", [4])  # not scored: not written


def test_folder_thumbnails_are_box_resized_files(tmp_path):
    from PIL import Image

    from conftest import write_tiny_imagefolder
    from lottery_mia.datasets import dataset_source

    root = write_tiny_imagefolder(tmp_path)
    imagenet = dataset_source("imagenet")
    t = imagenet.thumbnails(root, "val", [0, 7])
    folder = imagenet.folder(root, "val")
    want = np.asarray(Image.open(folder.samples[7][0]).convert("RGB").resize(
        (8, 8), Image.BOX), dtype=np.float32).transpose(2, 0, 1).ravel() / 255
    assert t.shape == (2, 192) and np.allclose(t[1], want)
    (root / "val" / "n00000000" / "img0.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="img0.png cannot be read"):
        imagenet.thumbnails(root, "val", [0])
