"""Shared fixtures: small data the tests make themselves, and a tiny workflow config."""

from __future__ import annotations

import copy
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))


# `make test-full` (CI) sets this: a test that needs a system install (SLURM, Chromium) that
# is missing fails instead of being skipped, so a bare CI machine cannot pass without them.
REQUIRE_SYSTEM = os.environ.get("LOTTERY_MIA_REQUIRE_SYSTEM") == "1"


def pytest_runtest_setup(item):
    """``@pytest.mark.needs_system(ok, reason)``: skip with ``reason`` when ``ok`` is false,
    or fail under LOTTERY_MIA_REQUIRE_SYSTEM=1."""
    for mark in item.iter_markers("needs_system"):
        ok, reason = mark.args
        if not ok:
            if REQUIRE_SYSTEM:
                pytest.fail(f"{reason} (the full suite, make test-full, must run this test)",
                            pytrace=False)
            pytest.skip(reason)


def snakemake_cmd() -> list[str]:
    """The snakemake of the interpreter running the tests."""
    exe = Path(sys.executable).with_name("snakemake")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "snakemake"]


def run_snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 1800,
                  env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = snakemake_cmd() + ["-s", str(ROOT / "Snakefile"), "-d", str(workdir),
                             "--configfile", str(workdir / "config.yaml"), *args]
    full_env = dict(env if env is not None else os.environ)  # env: a complete environment
    full_env["PYTHONPATH"] = str(SRC)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-5000:]}\n{proc.stderr[-5000:]}")
    return proc


def tiny_config() -> dict:
    """A config small enough for a full workflow run in well under a minute."""
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    cfg["device"] = "cpu"
    cfg["replicates"] = [0]
    cfg["architectures"] = ["resnet18", "resnet50"]
    cfg["sparsities"] = [0.0, 0.5, 0.8]
    for arch in ("resnet18", "resnet50"):
        cfg["training"]["digits"][arch].update(width=4, epochs=2, batch_size=64, eval_every=1)
    cfg["datasets"]["digits"]["members"] = 300
    cfg["datasets"]["digits"]["nonmembers"] = 300
    cfg["attack"]["sample_sizes"] = [100, 200]
    cfg["attack"]["n_bootstrap"] = 200
    cfg["attack"]["mlp"]["max_iter"] = 200
    cfg["attack"]["random_forest"]["n_estimators"] = 30
    cfg["attack"]["gradient_boosting"]["max_iter"] = 20
    cfg["transfer"].update(sample_size=200, architectures=["resnet18", "resnet50"],
                           sparsities=[0.0, 0.8])
    cfg["report"].update(table1_sparsity=0.8, figure2_sample_size=200, figure3_sparsity=0.8)
    cfg["references"].update(count=2, architectures=["resnet18"], sparsities=[0.0, 0.8])
    cfg["attack"]["shadow_mlp"] = {"hidden_layer_sizes": [16], "max_iter": 100}
    cfg["attack"]["rmia"] = {"a": 0.3}  # two references: too few to tune a
    cfg["attack"]["samia"] = {"epochs": 2, "layers": 1, "hidden": 16}
    # the ticket methods and a control; IMP at 0.6 per round serves 0.5 with round 1 (0.6)
    # and 0.8 with round 2 (0.84)
    cfg["pruning"]["methods"] = ["oneshot", "imp", "random_reinit"]
    cfg["pruning"]["imp"] = {"fraction": 0.6}
    return cfg


def planned_jobs(output: str) -> dict[str, int]:
    """Jobs per rule from the "Job stats" table of a ``snakemake -n`` run ({} if none)."""
    jobs, inside = {}, False
    for line in output.splitlines():
        parts = line.split()
        if line.startswith("Job stats"):
            inside = True
        elif inside and len(parts) == 2 and parts[1].isdigit():
            if parts[0] == "total":
                break
            jobs[parts[0]] = int(parts[1])
    return jobs


def write_config(workdir: Path, cfg: dict) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture
def tiny_cfg() -> dict:
    return copy.deepcopy(tiny_config())


def write_tiny_cifar(root: Path, source: str = "cifar10", n_train: int = 40, n_test: int = 20,
                     seed: int = 0) -> Path:
    """Write a tiny CIFAR-format (python pickle batches) dataset under ``root``."""
    rng = np.random.default_rng(seed)
    classes = 10 if source == "cifar10" else 100
    key = "labels" if source == "cifar10" else "fine_labels"
    folder = root / ("cifar-10-batches-py" if source == "cifar10" else "cifar-100-python")
    folder.mkdir(parents=True, exist_ok=True)

    def batch(n):
        return {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                key: rng.integers(0, classes, n).tolist()}

    if source == "cifar10":
        per = n_train // 5
        for i in range(1, 6):
            with open(folder / f"data_batch_{i}", "wb") as fh:
                pickle.dump(batch(per), fh)
        with open(folder / "test_batch", "wb") as fh:
            pickle.dump(batch(n_test), fh)
    else:
        with open(folder / "train", "wb") as fh:
            pickle.dump(batch(n_train), fh)
        with open(folder / "test", "wb") as fh:
            pickle.dump(batch(n_test), fh)
    return root


def write_tiny_imagefolder(root: Path, classes: int = 3, per_class: int = 4, size: int = 40) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in range(classes):
            d = root / split / f"n{c:08d}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                Image.fromarray(arr).save(d / f"img{i}.png")
    return root


def digits_data(folder: Path, members: int, nonmembers: int):
    """A seeded digits membership split written to ``folder``, as a training job's
    DataSpec."""
    from lottery_mia.data import DataSpec
    from lottery_mia.jobs.split import build_membership_split

    build_membership_split("digits", None, key="datasets.digits.root", download=False,
                           members=members, nonmembers=nonmembers, scored_members=None,
                           seed=0, output=folder / "membership.parquet")
    return DataSpec("digits", "digits", None, str(folder / "membership.parquet"))


@pytest.fixture(scope="session")
def trained_digits(tmp_path_factory):
    """A dense resnet18 (width 4) trained 3 epochs on digits, with its init and rewind states."""
    from lottery_mia.jobs.train import train_dense

    d = tmp_path_factory.mktemp("dense")
    data = digits_data(d, 300, 300)
    recipe = dict(width=4, epochs=3, batch_size=64, lr=0.05, eval_every=1, num_workers=0)
    train_dense(data=data, arch="resnet18", recipe=recipe, seed=0, rewind_epoch=1,
                device="cpu", out_model=d / "model.pt", out_init=d / "init.pt",
                out_rewind=d / "rewind.pt", out_metrics=d / "metrics.json", threads=1)
    return {"dir": d, "data": data, "recipe": recipe}


def family_attack_data(labels, half, model, k: int, n_sample: int, seed: int):
    """The AttackData of a synthetic family of models on one pool of rows (ids 0..n-1 with
    ``labels``), as a fit-attack job sees it: the target trains on ``half()``, an attack
    sample of ``n_sample`` rows is drawn by the pipeline's sampler, ``k`` references train on
    their own ``half()``; ``model(inclusion)`` is a model's confidence table on every row.
    The population is the target's non-members outside the sample."""
    import pandas as pd

    from lottery_mia.attack_samples import make_attack_sample
    from lottery_mia.attacks import AttackData

    rows = np.arange(len(labels))
    member = half()
    membership = pd.DataFrame({"sample_id": rows, "pool": "all", "pool_index": rows,
                               "label": labels, "member": member, "scored": True})
    sample = make_attack_sample(membership, n_sample, seed)
    ids = sample["sample_id"].to_numpy()
    pop_ids = np.setdiff1d(rows[~member], ids)
    target = model(member)
    ref_in = np.stack([half() for _ in range(k)])
    refs = [model(inc) for inc in ref_in]
    return AttackData(target=target.rows(ids), sample=sample,
                      references=[r.rows(ids) for r in refs], reference_in=ref_in[:, ids],
                      population=target.rows(pop_ids),
                      population_references=[r.rows(pop_ids) for r in refs],
                      population_in=ref_in[:, pop_ids])


def have(cmd: str) -> bool:
    return shutil.which(cmd) is not None


def magnitude_mask(model, sparsity: float, prune_fc: bool = True):
    """The global magnitude mask of ``model`` at ``sparsity`` (the oneshot method from an
    all-ones mask)."""
    from lottery_mia.pruning import get_method

    return get_method("oneshot").mask_at(model, sparsity, prune_fc=prune_fc)
