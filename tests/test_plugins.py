"""One file per plug-in: a dataset, an architecture, an attack, a pruning method and a figure,
each added as one new file to a copy of the tree, are all found by the dry run, and no other
file of the copy changes.

The copy holds the workflow (Snakefile, rules, workflow scripts, the package, the configs);
the new files go where their registries look (lottery_mia/datasets, networks, attacks,
pruning, figures). The config that uses them is the user's (a --configfile in the work
folder), not part of the tree.
"""

from __future__ import annotations

import copy
import filecmp
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, planned_jobs, snakemake_cmd, tiny_config

PLUGINS = {
    "src/lottery_mia/datasets/toyset.py": '''
"""``toyset``: 400 seeded random 8 x 8 images in 4 classes (a plug-in test's dataset)."""

import numpy as np

from .registry import DatasetSource, SourceInfo, register_dataset


@register_dataset
class ToySet(DatasetSource):
    info = SourceInfo("toyset", 4, 1, 8, "all", "all", 400, 400, True, (0.5,), (0.5,))
    layout = "nothing: the images are generated"
    needs_root = False

    def check_root(self, root, key):
        return None

    def pool_labels(self, root):
        return {"all": np.arange(400, dtype=np.int64) % 4}

    def load_pool(self, root, pool):
        rng = np.random.default_rng(0)
        return (rng.integers(0, 256, (400, 1, 8, 8), dtype=np.uint8),
                np.arange(400, dtype=np.int64) % 4)
''',
    "src/lottery_mia/networks/tinycnn.py": '''
"""``tinycnn``: one convolution and a classifier (a plug-in test's architecture)."""

from .registry import register_architecture


@register_architecture("tinycnn", classifier=("fc",), default_width=8, width="channels",
                       description="a one-convolution network")
def tinycnn(num_classes, width, in_channels, small_input):
    from torch import nn

    class TinyCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(in_channels, width, 3, padding=1)
            self.fc = nn.Linear(width, num_classes)

        def forward(self, x):
            return self.fc(self.conv(x).relu().mean((2, 3)))

    return TinyCNN()
''',
    "src/lottery_mia/attacks/margin.py": '''
"""``margin``: the true-class logit minus the largest other one (a plug-in test's attack)."""

import numpy as np

from ..stats.metrics import best_threshold
from .base import AttackData, AttackScores, register_attack


class Margin:
    def __init__(self, settings, seed):
        pass

    def fit_score(self, data: AttackData) -> AttackScores:
        z = data.target.logits.astype(np.float64)
        idx = np.arange(len(z))
        top = z[idx, data.target.label]
        z[idx, data.target.label] = -np.inf
        s = top - z.max(1)
        return AttackScores(s, best_threshold(data.is_member[data.train], s[data.train]))


register_attack("margin", kind="threshold", description="logit margin")(Margin)
''',
    "src/lottery_mia/pruning/layerwise.py": '''
"""``layerwise``: the same share of every layer, by magnitude (a plug-in test's method)."""

from .registry import PruningMethod, register_method


@register_method
class LayerWise(PruningMethod):
    name = "layerwise"
    kind = "control"
    score_state = "trained"
    base_mask = "oneshot"
    start = "rewind"
    description = "the oneshot mask's per-layer counts, by magnitude within each layer"

    def prune(self, model, mask, *, target, seed, batches=None):
        return mask.copy()
''',
    "src/lottery_mia/figures/auc_by_seed.py": '''
"""Figure 99: attack AUC of every seed (a plug-in test's figure)."""

from .registry import FigureData, register_figure
from .style import pyplot, save


@register_figure("figure99", file="figure99_auc_by_seed.png", title="Figure 99. AUC by seed",
                 caption="Attack AUC of every seed.", tables=("attacks",), params=("attack",))
def draw(data: FigureData, output):
    a = data.tables["attacks"]
    fig, ax = pyplot().subplots()
    ax.plot(range(len(a)), a["auc"], "o")
    save(fig, output)
    return fig
''',
}

TREE = ("Snakefile", "rules", "workflow", "src", "config", "profiles", "envs")


def _copy_tree(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in TREE:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns(
                "__pycache__", "*.egg-info", "*.pyc"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


def _snapshot(tree: Path) -> dict[str, Path]:
    return {str(p.relative_to(tree)): p for p in tree.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


@pytest.mark.slow
def test_a_dataset_architecture_attack_method_and_figure_are_one_new_file_each(tmp_path):
    tree = _copy_tree(tmp_path / "tree")
    before = _snapshot(tree)
    for rel, text in PLUGINS.items():
        assert not (tree / rel).exists(), rel
        (tree / rel).write_text(text.lstrip())
    after = _snapshot(tree)
    added = set(after) - set(before)
    assert added == set(PLUGINS), added  # nothing but the five new files ...
    assert set(before) <= set(after)
    changed = [r for r in before if not filecmp.cmp(before[r], after[r], shallow=False)]
    assert not changed, changed  # ... and no other file changed

    cfg = copy.deepcopy(tiny_config())
    recipe = copy.deepcopy(cfg["training"]["digits"]["resnet18"])
    cfg["datasets"] = {"toy": {"source": "toyset", "members": 100, "nonmembers": 100}}
    cfg["architectures"] = ["tinycnn"]
    cfg["training"] = {"toy": {"tinycnn": {**recipe, "width": 4}}}
    cfg["pruning"]["methods"] = ["oneshot", "layerwise"]
    cfg["attack"]["baselines"] = ["loss", "margin"]
    cfg["attack"]["sample_sizes"] = [100]
    cfg["references"]["count"] = 0
    cfg["transfer"].update(dataset="toy", architectures=["tinycnn"], sample_size=100)
    cfg["report"].update(table1_arch="tinycnn", figure2_sample_size=100)
    work = tmp_path / "work"
    work.mkdir()
    (work / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    proc = subprocess.run(
        snakemake_cmd() + ["-s", str(tree / "Snakefile"), "-d", str(work), "--configfile",
                           str(work / "config.yaml"), "-n"],
        capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    listing = proc.stdout + proc.stderr  # every planned job with its outputs
    jobs = planned_jobs(listing)
    assert jobs.get("train_dense") and jobs.get("fit_attack"), jobs
    assert "results/toy/" in listing  # the dataset
    assert "/tinycnn/" in listing  # the architecture
    assert "/layerwise/" in listing  # the pruning method
    assert "figure99_auc_by_seed.png" in listing  # the figure
    # the config schema does not list plug-ins: it stays as committed (its test passes)
    generated = subprocess.run([sys.executable, "-m", "lottery_mia.config"], capture_output=True,
                               text=True, timeout=120, env=env)
    assert generated.returncode == 0, generated.stderr[-2000:]
    committed = (tree / "workflow" / "schemas" / "config.schema.json").read_text()
    assert json.loads(generated.stdout) == json.loads(committed)
    # the attack: accepted by the config check (an unknown one stops the DAG build) and
    # handed to the fit-attack jobs
    check = subprocess.run(
        [sys.executable, "-c",
         "import sys, yaml; from lottery_mia.config import load_config; "
         f"cfg = load_config(yaml.safe_load(open({str(work / 'config.yaml')!r}))); "
         "print(cfg.attack.names)"],
        capture_output=True, text=True, timeout=120, env=env)
    assert check.returncode == 0, check.stderr[-3000:]
    assert "margin" in check.stdout
    bad = copy.deepcopy(cfg)
    bad["attack"]["baselines"] = ["loss", "margins"]
    (work / "bad.yaml").write_text(yaml.safe_dump(bad, sort_keys=False))
    refused = subprocess.run(
        snakemake_cmd() + ["-s", str(tree / "Snakefile"), "-d", str(work), "--configfile",
                           str(work / "bad.yaml"), "-n"],
        capture_output=True, text=True, timeout=600, env=env)
    assert refused.returncode != 0 and "margin" in refused.stdout + refused.stderr
