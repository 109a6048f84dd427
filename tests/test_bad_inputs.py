"""Bad inputs: corrupt, truncated, planted or mixed-up files, and lock paths that are not
locks (malformed configs: tests/test_config.py).

Each case asserts that the error names the config key or the file, and says what to do;
never a traceback without a message, never a silent wrong result. Planted pickle payloads
(a ``__reduce__`` that creates a marker file) must be refused or ignored, never run.
"""

from __future__ import annotations

import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT, magnitude_mask, write_tiny_cifar, write_tiny_imagefolder


# --------------------------------------------------------------------------- files
class Payload:
    """Unpickling this creates the marker file: proof that a payload ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """A real membership table, checkpoint and mask to corrupt."""
    from lottery_mia.checkpoints import model_spec, save_checkpoint
    from lottery_mia.jobs.split import build_membership_split
    from lottery_mia.networks import build_model

    d = tmp_path_factory.mktemp("artifacts")
    build_membership_split("digits", None, key="datasets.digits.root", download=False,
                           members=100, nonmembers=100, scored_members=None, seed=0,
                           output=d / "membership.parquet")
    spec = model_spec("resnet18", "digits", 4)
    torch.manual_seed(0)
    model = build_model(**spec)
    save_checkpoint(d / "model.pt", model, spec, epoch=0, sparsity=0.0)
    magnitude_mask(model, 0.5).save(d / "mask.pt")
    return d


def corrupt(src: Path, dst: Path, how: str, marker: Path) -> Path:
    data = src.read_bytes() if src is not None else b""
    if how == "garbage":
        dst.write_bytes(b"this is not the file you are looking for\n" * 10)
    elif how == "truncated":
        dst.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        dst.write_bytes(b"")
    elif how == "payload":
        torch.save({"model": {"arch": "resnet18"}, "state_dict": Payload(marker),
                    "mask": Payload(marker), "prune_fc": True}, dst)
    return dst


def _read_membership(p):
    from lottery_mia.membership import read_membership
    return read_membership(p)


def _load_checkpoint(p):
    from lottery_mia.checkpoints import load_checkpoint
    return load_checkpoint(p)


def _load_mask(p):
    from lottery_mia.masks import Mask
    return Mask.load(p)


FILE_CASES = [
    # (id, artifact, corruption, reader, words)
    ("membership-garbage", "membership.parquet", "garbage", _read_membership,
     ["membership table", "membership_split"]),
    ("membership-truncated", "membership.parquet", "truncated", _read_membership,
     ["membership table", "membership_split"]),
    ("membership-empty", "membership.parquet", "empty", _read_membership,
     ["membership table", "membership_split"]),
    ("checkpoint-garbage", "model.pt", "garbage", _load_checkpoint,
     ["checkpoint", "rerun the rule that writes it"]),
    ("checkpoint-truncated", "model.pt", "truncated", _load_checkpoint,
     ["checkpoint", "rerun the rule that writes it"]),
    ("checkpoint-empty", "model.pt", "empty", _load_checkpoint,
     ["checkpoint", "rerun the rule that writes it"]),
    ("checkpoint-payload", "model.pt", "payload", _load_checkpoint,
     ["refused, not run", "rerun the rule that writes it"]),
    ("mask-garbage", "mask.pt", "garbage", _load_mask, ["mask", "prune_mask"]),
    ("mask-truncated", "mask.pt", "truncated", _load_mask, ["mask", "prune_mask"]),
    ("mask-payload", "mask.pt", "payload", _load_mask, ["refused, not run", "prune_mask"]),
]


@pytest.mark.parametrize("name, how, reader, words", [c[1:] for c in FILE_CASES],
                         ids=[c[0] for c in FILE_CASES])
def test_a_corrupt_file_is_named_with_the_fix(artifacts, tmp_path, name, how, reader, words):
    marker = tmp_path / "payload-ran"
    bad = corrupt(artifacts / name, tmp_path / name, how, marker)
    with pytest.raises(ValueError) as err:
        reader(bad)
    msg = str(err.value)
    assert str(bad) in msg, msg
    for w in words:
        assert w in msg, (w, msg)
    assert not marker.exists(), "a planted payload ran"


def test_a_membership_table_without_members_column_is_named(artifacts, tmp_path):
    import pandas as pd

    from lottery_mia.membership import read_membership

    bad = tmp_path / "membership.parquet"
    pd.read_parquet(artifacts / "membership.parquet").drop(columns=["member"]).to_parquet(bad)
    with pytest.raises(ValueError, match=f"{bad}.*lacks columns.*membership_split"):
        read_membership(bad)


def test_a_mask_of_another_network_is_named(artifacts, tmp_path):
    from lottery_mia.checkpoints import model_spec, save_checkpoint
    from lottery_mia.networks import build_model
    from lottery_mia.jobs.train import rewound_ticket

    spec = model_spec("resnet18", "digits", 8)  # another width
    save_checkpoint(tmp_path / "rewind.pt", build_model(**spec), spec, epoch=0, step=0,
                    sparsity=0.0)
    with pytest.raises(ValueError, match=f"mask {artifacts / 'mask.pt'} does not fit.*prune_mask"):
        rewound_ticket(tmp_path / "rewind.pt", artifacts / "mask.pt", 0)


@pytest.mark.parametrize("how", ["garbage", "truncated", "payload"])
def test_a_corrupt_confidence_table_is_named(artifacts, tmp_path, how):
    from lottery_mia.confidences import read_confidences

    marker = tmp_path / "payload-ran"
    src = artifacts / "membership.parquet"  # any Parquet file: wrong columns
    bad = tmp_path / "confidences.parquet"
    if how == "payload":
        shutil.copy(src, bad)
    else:
        corrupt(src, bad, how, marker)
    with pytest.raises(Exception) as err:
        read_confidences(bad)
    assert str(bad) in str(err.value) or "Parquet" in str(err.value), str(err.value)
    assert not marker.exists()


@pytest.mark.parametrize("how", ["garbage", "truncated", "payload", "wrong-shape"])
def test_a_corrupt_resume_state_is_discarded_and_named(tmp_path, how, capsys):
    from lottery_mia.checkpoints import load_resume
    from lottery_mia.networks import build_model

    marker = tmp_path / "payload-ran"
    model = build_model(arch="resnet18", num_classes=10, width=4, in_channels=1,
                        small_input=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "resume.pt"
    if how == "wrong-shape":
        torch.save({"fingerprint": "f", "model": {"w": torch.zeros(1)}, "optimizer": {},
                    "history": [], "captured": None, "next_epoch": 1}, path)
    else:
        torch.save({"fingerprint": "f"}, path)
        corrupt(path, path, how, marker)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert load_resume(path, fingerprint="f", model=model, optimizer=opt, start_epoch=0,
                       epochs=3) is None
    assert f"discarding resume state {path}" in capsys.readouterr().out
    assert not path.exists() and not marker.exists()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("how", ["truncated", "garbage", "payload", "wrong-shape"])
def test_a_corrupt_cifar_batch_is_named(tmp_path, how):
    from lottery_mia.data import load_in_memory

    root = write_tiny_cifar(tmp_path / "cifar")
    batch = root / "cifar-10-batches-py" / "data_batch_3"
    marker = tmp_path / "payload-ran"
    if how == "truncated":
        batch.write_bytes(batch.read_bytes()[:500])
    elif how == "garbage":
        batch.write_bytes(b"\x80\x04garbage")
    elif how == "payload":
        with open(batch, "wb") as fh:
            pickle.dump({"data": Payload(marker), "labels": [0]}, fh)
    else:
        with open(batch, "wb") as fh:
            pickle.dump({"data": np.zeros((3, 100), np.uint8), "labels": [0, 1, 2]}, fh)
    with pytest.raises(ValueError) as err:
        load_in_memory("cifar10", root, "train", np.arange(4), key="datasets.cifar10.root")
    msg = str(err.value)
    assert str(batch) in msg and "replace it" in msg, msg
    assert not marker.exists(), "a planted payload ran"


def test_a_broken_jpeg_in_an_imagefolder_is_named(tmp_path):
    from lottery_mia.data import FolderImageSet

    root = write_tiny_imagefolder(tmp_path / "imagenet")
    broken = root / "train" / "n00000001" / "broken.JPEG"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    ds = FolderImageSet(root, "train", np.arange(13), (0.5,) * 3, (0.5,) * 3, num_workers=0,
                        image_size=32)
    with pytest.raises(ValueError) as err:
        list(ds.eval_batches(16))
    assert str(broken) in str(err.value) and "replace or delete it" in str(err.value)


def test_a_missing_dataset_root_names_the_path_and_how_to_provide_it(tmp_path):
    from lottery_mia.data import pool_labels

    missing = tmp_path / "no-cifar-here"
    with pytest.raises(Exception) as err:
        pool_labels("cifar10", missing, key="datasets.cifar10.root")
    msg = str(err.value)
    assert str(missing) in msg and "datasets.cifar10.root" in msg and "download" in msg


def test_train_dense_rejects_rewind_epoch_at_the_last_epoch(artifacts, tmp_path):
    from lottery_mia.data import DataSpec
    from lottery_mia.jobs.train import train_dense

    data = DataSpec("digits", "digits", None, str(artifacts / "membership.parquet"))
    with pytest.raises(ValueError, match="pruning.rewind_epoch"):
        train_dense(data=data, arch="resnet18", recipe=dict(epochs=2, batch_size=64, lr=0.1),
                    seed=0, rewind_epoch=2, device="cpu", out_model=tmp_path / "m.pt",
                    out_init=tmp_path / "i.pt", out_rewind=tmp_path / "r.pt",
                    out_metrics=tmp_path / "m.json")
    assert not any(tmp_path.glob("*.pt"))


def test_a_membership_table_of_other_data_is_named(tmp_path):
    from lottery_mia.data import load_in_memory

    root = write_tiny_cifar(tmp_path / "cifar")  # 40 training images
    with pytest.raises(ValueError, match="membership table asks for image 99.*delete"):
        load_in_memory("cifar10", root, "train", np.arange(100), key="datasets.cifar10.root")


def test_states_are_safetensors_and_earlier_torch_files_still_load(artifacts, tmp_path):
    from safetensors import safe_open

    from lottery_mia.checkpoints import load_checkpoint
    from lottery_mia.masks import Mask

    for name in ("model.pt", "mask.pt"):
        with safe_open(str(artifacts / name), framework="pt") as f:  # no pickle inside
            assert "lottery_mia" in f.metadata() and list(f.keys())
    model, ckpt = load_checkpoint(artifacts / "model.pt")
    legacy = tmp_path / "legacy.pt"
    torch.save({"model": ckpt["model"], "state_dict": model.state_dict(), "epoch": 0}, legacy)
    again, obj = load_checkpoint(legacy)
    assert obj["epoch"] == 0
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in model.state_dict().items())
    mask = Mask.load(artifacts / "mask.pt")
    torch.save({"prune_fc": True, "mask": {k: v.bool() for k, v in mask.tensors.items()}},
               legacy)
    assert Mask.load(legacy).n_pruned() == mask.n_pruned()


# --------------------------------------------------------------------------- mixed-up files
def test_a_dense_network_in_a_tickets_folder_is_refused_when_scored(trained_digits, tmp_path):
    from lottery_mia.checkpoints import load_checkpoint
    from lottery_mia.jobs.score import extract_confidences

    d = trained_digits["dir"]
    model, _ = load_checkpoint(d / "model.pt")
    magnitude_mask(model, 0.8).save(tmp_path / "mask.pt")
    ticket = {"dataset": "digits", "arch": "resnet18", "seed": 0, "method": "oneshot",
              "sparsity": 0.8, "imp_round": None}
    with pytest.raises(ValueError, match=f"{d / 'model.pt'}.*method='dense'.*method='oneshot'"):
        extract_confidences(data=trained_digits["data"], model_path=d / "model.pt",
                            dataset="digits", arch="resnet18", sparsity=0.8, device="cpu",
                            batch_size=256, output=tmp_path / "c.parquet", method="oneshot",
                            expected=ticket, mask_path=tmp_path / "mask.pt")
    assert not (tmp_path / "c.parquet").exists()
    dense = {**ticket, "method": "dense", "sparsity": 0.0, "seed": 1}  # another seed's
    with pytest.raises(ValueError, match="seed=0.*seed=1"):
        extract_confidences(data=trained_digits["data"], model_path=d / "model.pt",
                            dataset="digits", arch="resnet18", sparsity=0.0, device="cpu",
                            batch_size=256, output=tmp_path / "c.parquet", method="dense",
                            expected=dense)


def _confidence_table(tmp_path, name, meta, n=40, classes=10, seed=0):
    from lottery_mia.confidences import ConfidenceTable, write_confidences

    rng = np.random.default_rng(seed)
    t = ConfidenceTable.from_logits(np.arange(n), rng.integers(0, classes, n),
                                    np.arange(n) % 2 == 0, rng.normal(size=(n, classes)),
                                    meta)
    write_confidences(t, tmp_path / name)
    return t


def test_a_dense_confidence_table_in_a_tickets_folder_is_refused_when_attacked(tmp_path):
    import pandas as pd

    from lottery_mia.jobs.attack import run_attacks

    t = _confidence_table(tmp_path, "confidences.parquet",
                          {"dataset": "digits", "arch": "resnet18", "method": "dense",
                           "sparsity": 0.0, "replicate": 0})
    sample = pd.DataFrame({"sample_id": t.sample_id, "label": 0, "member": t.member,
                           "fold": np.where(np.arange(40) < 20, "attack_train",
                                            "attack_test")})
    sample.to_parquet(tmp_path / "sample.parquet")
    with pytest.raises(ValueError, match="confidences.parquet.*method='dense'.*'oneshot'"):
        run_attacks(confidences_path=tmp_path / "confidences.parquet",
                    sample_path=tmp_path / "sample.parquet", attacks=["loss"], settings={},
                    features="softmax", seed=0, n_bootstrap=200,
                    out_metrics=tmp_path / "m.json", out_scores=tmp_path / "s.parquet",
                    expected={"dataset": "digits", "arch": "resnet18", "method": "oneshot",
                              "sparsity": 0.8, "replicate": 0})


def test_duplicate_attack_results_are_refused_naming_both_files(tmp_path):
    from lottery_mia.io import write_json
    from lottery_mia.jobs.summarize import summarize_attacks

    result = {"dataset": "digits", "arch": "resnet18", "method": "dense", "sparsity": 0.0,
              "achieved_sparsity": 0.0, "replicate": 0, "sample_size": 100, "attacks": [{"attack": "loss",
                                                               "threshold": 0.5}]}
    for name in ("a", "b"):
        write_json(result, tmp_path / name / "metrics.json")
    with pytest.raises(ValueError, match=f"{tmp_path / 'a'}.*{tmp_path / 'b'}.*same model"):
        summarize_attacks([tmp_path / "a/metrics.json", tmp_path / "b/metrics.json"],
                          [tmp_path / "a/s.parquet", tmp_path / "b/s.parquet"],
                          tmp_path / "attacks.csv")


# --------------------------------------------------------------------------- named files
def test_a_corrupt_metrics_json_is_named(artifacts, tmp_path):
    from lottery_mia.jobs.summarize import summarize_training

    bad = tmp_path / "metrics.json"
    bad.write_text('{"dataset": "digits", "arch": ')
    with pytest.raises(ValueError, match=f"{bad} is not a readable JSON file.*rerun"):
        summarize_training([bad], {"digits": artifacts / "membership.parquet"},
                           tmp_path / "training.csv")


def test_a_summary_csv_without_its_columns_is_named(tmp_path):
    import pandas as pd

    from lottery_mia.jobs.tables import write_tables

    bad = tmp_path / "attacks.csv"
    pd.DataFrame({"dataset": ["digits"], "attack": ["mlp"]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match=f"{bad}.*lacks the column.*'arch'.*summarize_attacks"):
        write_tables(attacks_csv=bad, score_paths=[], arch="resnet18", ticket_sparsity=0.8,
                     attack="mlp", method="oneshot", n_bootstrap=200, seed=0,
                     margins={"auc": 0.03}, primary={"attack": "auto", "metric": "auc"},
                     out_table1_csv=tmp_path / "t.csv",
                     out_table1_md=tmp_path / "t.md", out_verdicts=tmp_path / "v.csv",
                     out_attack_models=tmp_path / "a.csv")


def test_a_confidence_table_with_variable_size_logit_lists(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lottery_mia.confidences import read_confidences

    t = _confidence_table(tmp_path, "fixed.parquet", {"dataset": "digits"})
    table = pq.read_table(tmp_path / "fixed.parquet")
    for name, rows in (("same.parquet", t.logits.tolist()),
                       ("ragged.parquet", [r[: 10 - (i % 2)] for i, r in
                                           enumerate(t.logits.tolist())])):
        col = pa.array(rows, pa.list_(pa.float32()))
        pq.write_table(table.set_column(table.schema.get_field_index("logits"), "logits", col),
                       tmp_path / name)
    same = read_confidences(tmp_path / "same.parquet")  # another writer's layout: accepted
    np.testing.assert_array_equal(same.logits, t.logits)
    with pytest.raises(ValueError, match="ragged.parquet.*lists of different lengths"):
        read_confidences(tmp_path / "ragged.parquet")


def test_a_full_disk_names_the_file_being_written(tmp_path):
    """RLIMIT_FSIZE makes write() fail with EFBIG ("File too large"), as a full disk does
    with ENOSPC: the error must say which file."""
    import subprocess
    import sys
    import textwrap

    from conftest import SRC

    code = textwrap.dedent(f"""
        import resource, signal, sys
        sys.path.insert(0, {str(SRC)!r})
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
        from lottery_mia.io import write_json
        try:
            write_json({{"x": list(range(10000))}}, {str(tmp_path / "big.json")!r})
        except OSError as err:
            print("ERROR", err)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60).stdout
    assert f"cannot write {tmp_path / 'big.json'}" in out and "free space" in out, out
    assert not (tmp_path / "big.json").exists()
    assert not list(tmp_path.glob(".big.json*"))  # no temporary file left


def test_an_attack_sample_of_other_data_names_both_files(tmp_path):
    import pandas as pd

    from lottery_mia.attacks import attack_data

    _confidence_table(tmp_path, "c.parquet", {"dataset": "digits"})
    pd.DataFrame({"sample_id": [0, 1, 999, 3], "label": 0, "member": [True, False] * 2,
                  "fold": ["attack_train"] * 2 + ["attack_test"] * 2}).to_parquet(
        tmp_path / "n4.parquet")
    from lottery_mia import attack_samples

    real = attack_samples.validate_attack_sample
    attack_samples.validate_attack_sample = lambda *a, **k: None  # not stratified: no matter
    try:
        with pytest.raises(ValueError, match="c.parquet has no row for sample_id 999.*"
                                             "n4.parquet"):
            attack_data(tmp_path / "c.parquet", tmp_path / "n4.parquet", "softmax")
    finally:
        attack_samples.validate_attack_sample = real


def test_cifar_labels_outside_the_classes_are_named_at_the_split(tmp_path):
    import pickle

    from conftest import write_tiny_cifar
    from lottery_mia.data import pool_labels

    root = write_tiny_cifar(tmp_path / "cifar", n_train=40, n_test=20)
    batch = root / "cifar-10-batches-py" / "data_batch_3"
    with open(batch, "rb") as fh:
        entry = pickle.load(fh)
    entry["labels"][2] = 57
    with open(batch, "wb") as fh:
        pickle.dump(entry, fh)
    with pytest.raises(ValueError, match=f"{batch} has label 57.*10 classes"):
        pool_labels("cifar10", root, key="datasets.cifar10.root")


# --------------------------------------------------------------------------- settings
@pytest.mark.parametrize("path,value,key", [
    (("training", "digits", "resnet18", "epochs"), True, "training.digits.resnet18.epochs"),
    (("replicates",), [True, False], "replicates[0]"),
    (("datasets", "digits", "members"), True, "datasets.digits.members"),
])
def test_a_boolean_is_not_a_number_anywhere_in_the_config(path, value, key):
    import copy

    import yaml

    from lottery_mia.config import ConfigError, load_config

    raw = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    d = raw = copy.deepcopy(raw)
    for k in path[:-1]:
        d = d[k]
    d[path[-1]] = value
    with pytest.raises(ConfigError, match=rf"config key '{re.escape(key)}': true is a boolean"):
        load_config(raw)


@pytest.mark.parametrize("attack,settings,words", [
    ("shadow_mlp", {"max_iter": -5}, "max_iter"),
    ("shadow_mlp", {"hidden_layer_sizes": [0]}, "hidden_layer_sizes must be positive"),
    ("mlp", {"hidden_layer_sizes": [0]}, "hidden_layer_sizes must be positive"),
])
def test_attack_settings_scikit_learn_checks_only_at_fit_fail_the_dag_build(attack, settings,
                                                                            words):
    import yaml

    from lottery_mia.config import ConfigError, load_config

    raw = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    raw["attack"][attack] = settings
    with pytest.raises(ConfigError, match=rf"attack.{attack}.*{words}"):
        load_config(raw)


def test_bfloat16_overflow_is_refused_at_write_like_float16(tmp_path):
    from lottery_mia.confidences import ConfidenceTable, write_confidences

    logits = np.zeros((4, 3), dtype=np.float32)
    logits[1, 2] = 3.4e38
    t = ConfidenceTable.from_logits(np.arange(4), np.zeros(4, int), np.array([1, 0, 1, 0], bool),
                                    logits, {"dataset": "digits"})
    with pytest.raises(ValueError, match="beyond bfloat16's range"):
        write_confidences(t, tmp_path / "c.parquet", logits_dtype="bfloat16")
    assert not (tmp_path / "c.parquet").exists()


def test_audit_attack_settings_scikit_learn_checks_at_fit_are_refused(tmp_path):
    from lottery_mia.audit import AuditInputError, audit

    import pandas as pd

    rng = np.random.default_rng(0)
    n = 200
    frame = pd.DataFrame({"sample_id": np.arange(n), "label": np.arange(n) % 10,
                          "logits": list(rng.normal(size=(n, 10))),
                          "member": np.arange(n) % 2 == 0})
    with pytest.raises(AuditInputError, match="hidden_layer_sizes must be positive"):
        audit(frame, out_dir=tmp_path / "a", attacks=["mlp"],
              attack_settings={"mlp": {"hidden_layer_sizes": [-3]}}, n_bootstrap=300)
