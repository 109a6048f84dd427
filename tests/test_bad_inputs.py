"""Bad inputs (issue 10): malformed configs and corrupt or truncated files.

Each case asserts that the error names the config key or the file, and says what to do;
never a traceback without a message, never a silent wrong result. Planted pickle payloads
(a ``__reduce__`` that creates a marker file) must be refused or ignored, never run.
"""

from __future__ import annotations

import copy
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT, tiny_config, write_tiny_cifar, write_tiny_imagefolder
from lottery_mia.config import ConfigError, check_config, schema_problem

SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def config_error(cfg: dict) -> str:
    """The message a config gets at DAG time (the schema first, then check_config)."""
    problem = schema_problem(cfg, SCHEMA)
    if problem:
        return problem
    with pytest.raises(ConfigError) as err:
        check_config(cfg)
    return str(err.value)


def _cifar(c):
    c["datasets"]["cifar"] = {"source": "cifar10", "root": None, "download": True}
    c["training"]["cifar"] = c["training"]["digits"]


CONFIG_CASES = [
    # (id, change, words the message must contain: the key and the remedy)
    ("top-level-typo", lambda c: c.update(sparsites=c.pop("sparsities")),
     ["sparsites", "did you mean 'sparsities'", "allowed"]),
    ("nested-typo", lambda c: c["attack"].update(sampel_sizes=[100]),
     ["'attack.sampel_sizes'", "sampel_sizes", "did you mean 'sample_sizes'"]),
    ("recipe-typo", lambda c: c["training"]["digits"]["resnet18"].update(epoch=3),
     ["training.digits.resnet18", "'epoch'", "allowed"]),
    ("bad-enum", lambda c: c["attack"].update(features="soft"),
     ["attack.features", "'soft'", "softmax"]),
    ("bad-device", lambda c: c.update(device="gpu"), ["'device'", "gpu"]),
    ("mlp-typo", lambda c: c["attack"]["mlp"].update(hiden_layer_sizes=[8]),
     ["attack.mlp", "hiden_layer_sizes", "did you mean 'hidden_layer_sizes'"]),
    ("rewind-equals-epochs", lambda c: c["pruning"].update(rewind_epoch=2),
     ["pruning.rewind_epoch", "epochs=2", "lower it"]),
    ("rewind-beyond-epochs", lambda c: c["pruning"].update(rewind_epoch=50),
     ["pruning.rewind_epoch", "lower it"]),
    ("rewind-both", lambda c: c["pruning"].update(rewind_step=10),
     ["pruning.rewind_epoch", "pruning.rewind_step", "exactly one"]),
    ("pruning-method-typo", lambda c: c["pruning"].update(methods=["oneshot", "imp", "snp"]),
     ["pruning.methods", "'snp'", "did you mean 'snip'"]),
    ("pruning-setting-typo", lambda c: c["pruning"].update(imp={"fracton": 0.2}),
     ["pruning.imp", "fracton", "did you mean 'fraction'"]),
    ("pruning-control-without-base", lambda c: c["pruning"].update(methods=["random_mask"]),
     ["pruning.methods", "random_mask", "add 'oneshot'"]),
    ("duplicate-sample-size", lambda c: c["attack"].update(sample_sizes=[100, 200, 200]),
     ["attack.sample_sizes", "200 more than once", "list each value once"]),
    ("duplicate-dataset-sample-size",
     lambda c: c["datasets"]["digits"].update(attack_sample_sizes=[100, 100]),
     ["datasets.digits.attack_sample_sizes", "more than once"]),
    ("duplicate-sparsity", lambda c: c.update(sparsities=[0.0, 0.5, 0.5]),
     ["'sparsities'", "more than once"]),
    ("duplicate-transfer-sparsity", lambda c: c["transfer"].update(sparsities=[0.0, 0.8, 0.8]),
     ["transfer.sparsities", "more than once"]),
    ("duplicate-transfer-arch",
     lambda c: c["transfer"].update(architectures=["resnet18", "resnet18"]),
     ["transfer.architectures", "more than once"]),
    ("duplicate-milestone",
     lambda c: c["training"]["digits"]["resnet18"].update(schedule="step", milestones=[1, 1]),
     ["training.digits.resnet18.milestones", "more than once"]),
    ("sparsities-same-folder", lambda c: c.update(sparsities=[0.0, 0.5, 0.5000000001]),
     ["'sparsities'", "sparsity-0.5", "6 significant digits"]),
    ("huge-seed", lambda c: c.update(replicates=[2**40]), ["'replicates.0'", "maximum"]),
    ("huge-split-seed", lambda c: c["datasets"]["digits"].update(split_seed=2**33),
     ["datasets.digits.split_seed", "maximum"]),
    ("huge-attack-seed", lambda c: c["attack"].update(seed=2**32), ["attack.seed", "maximum"]),
    ("download-without-root", _cifar, ["datasets.cifar.download", "datasets.cifar.root"]),
    ("digits-members-below-classes", lambda c: c["datasets"]["digits"].update(members=5),
     ["datasets.digits.members", "10 classes", "raise it"]),
    ("digits-nonmembers-below-classes", lambda c: c["datasets"]["digits"].update(nonmembers=4),
     ["datasets.digits.nonmembers", "raise it"]),
    ("attack-size-too-small", lambda c: c["attack"].update(sample_sizes=[2, 100]),
     ["attack.sample_sizes", "too small to split", "raise it"]),
    ("attack-size-too-small-for-fraction",
     lambda c: c["attack"].update(sample_sizes=[4, 100], test_fraction=0.9),
     ["attack.sample_sizes", "test_fraction=0.9"]),
    ("unknown-architecture", lambda c: c.update(architectures=["resnet18", "resnet34"]),
     ["architectures", "resnet34"]),
    ("sample-size-above-data", lambda c: c["attack"].update(sample_sizes=[2000]),
     ["attack.sample_sizes", "lower it"]),
]


@pytest.mark.parametrize("change, words", [c[1:] for c in CONFIG_CASES],
                         ids=[c[0] for c in CONFIG_CASES])
def test_a_malformed_config_names_the_key_and_the_fix(change, words):
    cfg = copy.deepcopy(tiny_config())
    change(cfg)
    msg = config_error(cfg)
    assert len(msg.splitlines()) == 1 and len(msg) < 1000, msg
    for w in words:
        assert w in msg, (w, msg)


def test_the_default_and_tiny_configs_pass():
    assert schema_problem(tiny_config(), SCHEMA) is None
    check_config(tiny_config())


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
    from lottery_mia.masks import Mask
    from lottery_mia.membership import build_membership_split
    from lottery_mia.models import build_model

    d = tmp_path_factory.mktemp("artifacts")
    build_membership_split("digits", None, key="datasets.digits.root", download=False,
                           members=100, nonmembers=100, scored_members=None, seed=0,
                           output=d / "membership.parquet")
    spec = model_spec("resnet18", "digits", 4)
    torch.manual_seed(0)
    model = build_model(**spec)
    save_checkpoint(d / "model.pt", model, spec, epoch=0, sparsity=0.0)
    Mask.global_magnitude(model, 0.5).save(d / "mask.pt")
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
    from lottery_mia.models import build_model
    from lottery_mia.pruning.jobs import rewound_ticket

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
    from lottery_mia.models import build_model

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


def test_a_missing_root_warns_at_dag_time():
    from lottery_mia.config import root_warnings

    cfg = copy.deepcopy(tiny_config())
    cfg["datasets"]["cifar"] = {"source": "cifar10", "root": "/no/such/folder"}
    (w,) = root_warnings(cfg)
    assert "datasets.cifar.root" in w and "/no/such/folder" in w and "download" in w


def test_train_dense_rejects_rewind_epoch_at_the_last_epoch(artifacts, tmp_path):
    from lottery_mia.training import DataSpec, train_dense

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
