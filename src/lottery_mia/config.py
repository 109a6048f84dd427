"""Config checks and the helpers the Snakefile uses to turn the config into jobs.

No torch here: the Snakefile imports this module, and cluster jobs re-read the Snakefile.
The JSON schema (``workflow/schemas/config.schema.yaml``) checks types and names; this module
checks what a schema cannot: consistency between keys, and sizes against the data. Every
error names the config key at fault.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .sources import SOURCES, max_split_sizes

ARCHITECTURE_NAMES = ("resnet18", "resnet50")
DEVICES = ("cpu", "cuda", "auto")


class ConfigError(ValueError):
    """The config is wrong; the message names the key and what to do."""


def fmt_sparsity(s: float) -> str:
    """How a sparsity appears in paths and wildcards: 0 -> "0", 0.8 -> "0.8"."""
    s = float(s)
    if not 0.0 <= s < 1.0:
        raise ConfigError(f"sparsity {s} is outside [0, 1)")
    return f"{s:.6g}"


@dataclass(frozen=True)
class Grid:
    """The experiment grid of one dataset."""

    dataset: str
    architectures: tuple[str, ...]
    sparsities: tuple[float, ...]
    sample_sizes: tuple[int, ...]


def _require(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


def split_sizes(ds_cfg: dict, source: str) -> tuple[int, int, int]:
    """(members, scored members, non-members) the membership split will have.

    Computed from the config and the standard sizes of the source, before any data is read;
    the membership job checks the real files.
    """
    max_mem, max_non = max_split_sizes(source)
    if source == "digits":  # one pool shared by both roles
        n_mem = ds_cfg.get("members") or max_mem // 2
        n_non = ds_cfg.get("nonmembers") or max_mem - n_mem
    else:
        n_mem = ds_cfg.get("members") or max_mem
        n_non = ds_cfg.get("nonmembers") or max_non
    scored = ds_cfg.get("scored_members") or n_mem
    return n_mem, scored, n_non


def sample_sizes_of(config: dict, dataset: str) -> tuple[int, ...]:
    """Attack sample sizes of a dataset: its own list, else ``attack.sample_sizes``."""
    own = config["datasets"][dataset].get("attack_sample_sizes")
    return tuple(own if own is not None else config["attack"]["sample_sizes"])


def check_config(config: dict) -> dict[str, Grid]:
    """Check cross-key consistency; return the grid of every dataset."""
    for key in ("datasets", "architectures", "sparsities", "training", "attack", "transfer",
                "report", "pruning", "replicates"):
        _require(key in config, f"config key {key!r} is missing")
    device = config.get("device", "auto")
    _require(device in DEVICES or str(device).startswith("cuda:"),
             f"config key 'device': {device!r} is not one of {DEVICES} (or cuda:N)")
    datasets = config["datasets"]
    _require(isinstance(datasets, dict) and datasets, "config key 'datasets' must name at "
             "least one dataset")
    archs = tuple(config["architectures"])
    _require(len(archs) > 0, "config key 'architectures' is empty")
    for a in archs:
        _require(a in ARCHITECTURE_NAMES, f"config key 'architectures': unknown architecture "
                 f"{a!r}; choose from {ARCHITECTURE_NAMES}")
    sparsities = tuple(float(s) for s in config["sparsities"])
    for s in sparsities:
        _require(0.0 <= s < 1.0 and math.isfinite(s),
                 f"config key 'sparsities': {s} is outside [0, 1)")
    _require(0.0 in sparsities, "config key 'sparsities' must include 0 (the dense baseline)")
    _require(len({fmt_sparsity(s) for s in sparsities}) == len(sparsities),
             "config key 'sparsities' lists a value twice")
    grids = {}
    for name, ds in datasets.items():
        key = f"datasets.{name}"
        source = ds.get("source")
        _require(source in SOURCES, f"config key '{key}.source': unknown dataset source "
                 f"{source!r}; choose from {SOURCES}")
        n_mem, n_scored, n_non = split_sizes(ds, source)
        max_mem, max_non = max_split_sizes(source)
        if source == "digits":
            _require(n_mem + n_non <= max_mem, f"config keys '{key}.members' + "
                     f"'{key}.nonmembers' = {n_mem + n_non} exceed the {max_mem} digits images")
        else:
            _require(n_mem <= max_mem, f"config key '{key}.members': {n_mem} exceeds the "
                     f"{max_mem} training images of {source}")
            _require(n_non <= max_non, f"config key '{key}.nonmembers': {n_non} exceeds the "
                     f"{max_non} held-out images of {source}")
        _require(n_scored <= n_mem, f"config key '{key}.scored_members': {n_scored} exceeds "
                 f"the {n_mem} members")
        sizes = sample_sizes_of(config, name)
        size_key = (f"{key}.attack_sample_sizes" if ds.get("attack_sample_sizes") is not None
                    else "attack.sample_sizes")
        _require(len(sizes) > 0, f"config key '{size_key}' is empty")
        limit = 2 * min(n_scored, n_non)
        for n in sizes:
            _require(isinstance(n, int) and not isinstance(n, bool) and n > 0 and n % 2 == 0,
                     f"config key '{size_key}': {n!r} must be a positive even integer "
                     "(n/2 members and n/2 non-members)")
            _require(n <= limit, f"config key '{size_key}': {n} is larger than dataset "
                     f"{name!r} allows ({n_scored} scored members and {n_non} non-members, "
                     f"so at most {limit}); lower it or raise '{key}.members'/'nonmembers'")
        for a in archs:
            _require(a in config["training"].get(name, {}),
                     f"config key 'training.{name}.{a}' is missing: every dataset x "
                     "architecture needs a training recipe")
        grids[name] = Grid(name, archs, sparsities, tuple(int(n) for n in sizes))
    _check_transfer(config, grids)
    _check_report(config, archs, sparsities, grids)
    _check_replicates(config)
    _check_attacks(config)
    _check_references(config, archs, sparsities)
    return grids


def _check_references(config: dict, archs, sparsities) -> None:
    from .attacks import ATTACKS, check_attack_config

    ref = config.get("references") or {}
    count = ref.get("count", 0)
    _require(isinstance(count, int) and not isinstance(count, bool) and
             (count == 0 or count >= 2), f"config key 'references.count': {count!r} must be 0 "
             "(no reference attacks) or at least 2 (16+ for per-sample variances)")
    if count == 0:
        return
    for d in ref.get("datasets") or []:
        _require(d in config["datasets"], f"config key 'references.datasets': {d!r} is not "
                 "one of the configured datasets")
    for a in ref.get("architectures", []):
        _require(a in archs, f"config key 'references.architectures': {a!r} is not in "
                 "'architectures'")
    spars = {fmt_sparsity(x) for x in sparsities}
    for s in ref.get("sparsities", []):
        _require(fmt_sparsity(s) in spars, f"config key 'references.sparsities': {s} is not "
                 "in 'sparsities'")
    names = list(ref.get("attacks", []))
    _require(len(set(names)) == len(names), "config key 'references.attacks' lists an "
             "attack twice")
    for n in names:
        _require(n in ATTACKS and ATTACKS[n].needs_references,
                 f"config key 'references.attacks': {n!r} is not an attack that uses "
                 "reference models; choose from "
                 f"{sorted(k for k, v in ATTACKS.items() if v.needs_references)}")
    _require(not set(names) & set(attack_names(config)), "config keys "
             "'references.attacks' and 'attack.models'/'attack.baselines' overlap")
    problems = check_attack_config(names, {n: config["attack"].get(n) for n in names})
    _require(not problems, "; ".join(problems))


def _check_replicates(config: dict) -> None:
    reps = config["replicates"]
    _require(isinstance(reps, list) and len(reps) > 0,
             "config key 'replicates' must be a non-empty list of training seeds, e.g. [0, 1]")
    for r in reps:
        _require(isinstance(r, int) and not isinstance(r, bool) and 0 <= r < 2**31,
                 f"config key 'replicates': {r!r} is not a seed (an integer in [0, 2^31))")
    dup = sorted({r for r in reps if reps.count(r) > 1})
    _require(not dup, f"config key 'replicates' lists {dup} more than once; each replicate "
             "must be its own seed")


def attack_names(config: dict) -> list[str]:
    """Every attack a fit-attack job runs: attack.models, then attack.baselines."""
    a = config["attack"]
    return list(a.get("models", ["mlp"])) + list(
        a.get("baselines", ["loss", "confidence", "entropy", "modified_entropy"]))


def _check_attacks(config: dict) -> None:
    from .attacks import ATTACKS, check_attack_config

    a = config["attack"]
    names = attack_names(config)
    dup = sorted({n for n in names if names.count(n) > 1})
    _require(not dup, f"config keys attack.models/attack.baselines list {dup} more than once")
    for key, kind in (("models", "classifier"), ("baselines", "threshold")):
        for n in a.get(key, []):
            _require(n in ATTACKS and ATTACKS[n].kind == kind,
                     f"config key 'attack.{key}': {n!r} is not a {kind} attack; choose from "
                     f"{sorted(k for k, v in ATTACKS.items() if v.kind == kind)}")
    for key, value in a.items():
        _require(not isinstance(value, dict) or key in ATTACKS,
                 f"config key 'attack.{key}': no attack is called {key!r}; attack settings go "
                 f"under the name of a registered attack: {sorted(ATTACKS)}")
    problems = check_attack_config(names, {n: a.get(n) for n in names})
    _require(not problems, "; ".join(problems))
    t_attack = config["transfer"].get("attack", "mlp")
    _require(t_attack in a.get("models", ["mlp"]),
             f"config key 'transfer.attack': {t_attack!r} is not one of attack.models")
    r = config["report"]
    _require(r.get("attack", "mlp") in names, f"config key 'report.attack': "
             f"{r.get('attack', 'mlp')!r} is not one of attack.models/attack.baselines")
    for key in ("slice_attacks", "verdict_attacks"):
        for n in r.get(key, []):
            _require(n in names, f"config key 'report.{key}': {n!r} is not one of "
                     "attack.models/attack.baselines")
    nb = a.get("n_bootstrap", 1000)
    _require(isinstance(nb, int) and nb >= 200, f"config key 'attack.n_bootstrap': {nb!r} "
             "must be an integer >= 200 (1000 or more for reported intervals)")


def _check_transfer(config: dict, grids: dict[str, Grid]) -> None:
    t = config["transfer"]
    _require(t["dataset"] in grids, f"config key 'transfer.dataset': {t['dataset']!r} is not "
             "one of the configured datasets")
    g = grids[t["dataset"]]
    for a in t["architectures"]:
        _require(a in g.architectures, f"config key 'transfer.architectures': {a!r} is not in "
                 "'architectures'")
    for s in t["sparsities"]:
        _require(fmt_sparsity(s) in {fmt_sparsity(x) for x in g.sparsities},
                 f"config key 'transfer.sparsities': {s} is not in 'sparsities'")
    _require(t["sample_size"] in g.sample_sizes, f"config key 'transfer.sample_size': "
             f"{t['sample_size']} is not in 'attack.sample_sizes'")


def _check_report(config: dict, archs, sparsities, grids: dict[str, Grid]) -> None:
    r = config["report"]
    spars = {fmt_sparsity(x) for x in sparsities}
    _require(r["table1_arch"] in archs, f"config key 'report.table1_arch': "
             f"{r['table1_arch']!r} is not in 'architectures'")
    for k in ("table1_sparsity", "figure3_sparsity"):
        _require(fmt_sparsity(r[k]) in spars, f"config key 'report.{k}': {r[k]} is not in "
                 "'sparsities'")
    _require(float(r["table1_sparsity"]) > 0, "config key 'report.table1_sparsity' must be a "
             "ticket sparsity (> 0)")
    _require(any(r["figure2_sample_size"] in g.sample_sizes for g in grids.values()),
             f"config key 'report.figure2_sample_size': {r['figure2_sample_size']} is not an "
             "attack sample size of any dataset")
