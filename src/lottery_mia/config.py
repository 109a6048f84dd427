"""Config checks and the helpers the Snakefile uses to turn the config into jobs.

No torch here: the Snakefile imports this module, and cluster jobs re-read the Snakefile.
The JSON schema (``workflow/schemas/config.schema.yaml``) checks types and names; this module
checks what a schema cannot: consistency between keys, and sizes against the data. Every
error names the config key at fault.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

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


def canonical(obj):
    """``obj`` with the keys of every mapping sorted, recursively.

    Snakemake decides whether a job's params changed by comparing their ``repr``, so a
    mapping whose keys merely come in another order (a config file rewritten with sorted
    keys) would rerun every job that takes it. Params hand over canonical values."""
    if isinstance(obj, dict) or (hasattr(obj, "items") and not isinstance(obj, (str, bytes))):
        return {str(k): canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [canonical(v) for v in obj]
    return obj


def how_to_run(**settings) -> SimpleNamespace:
    """How and where a job runs, never what it computes: the device, the runtime block
    (CUDA graphs, GPU slots), data-loader workers, whether a dataset may be downloaded.

    A rule hands it to its job as a param like any other setting. It is deliberately not a
    builtin type: Snakemake compares the ``repr`` of builtin-typed params only when it
    decides what to rerun, so changing how or where jobs run (a faster device, more loader
    workers, a SLURM time limit) reruns nothing that is already computed
    (``tests/test_workflow.py`` checks this for every such key)."""
    return SimpleNamespace(**canonical(settings))


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


def split_params(ds_cfg: dict) -> dict:
    """The membership split's sizes in one canonical form: a size equal to what ``null``
    resolves to is ``None``, so writing out the value a ``null`` already stands for (or
    the reverse) reruns nothing."""
    source = ds_cfg.get("source")
    n_mem, n_scored, n_non = split_sizes(ds_cfg, source)
    default_mem, _, _ = split_sizes({}, source)
    _, _, default_non = split_sizes({"members": ds_cfg.get("members")}, source)
    return {"members": None if n_mem == default_mem else int(n_mem),
            "nonmembers": None if n_non == default_non else int(n_non),
            "scored_members": None if n_scored == n_mem else int(n_scored),
            "split_seed": int(ds_cfg.get("split_seed") or 0)}


def sample_sizes_of(config: dict, dataset: str) -> tuple[int, ...]:
    """Attack sample sizes of a dataset: its own list, else ``attack.sample_sizes``."""
    own = config["datasets"][dataset].get("attack_sample_sizes")
    return tuple(own if own is not None else config["attack"]["sample_sizes"])


def check_config(config: dict, cache_dir=None) -> dict[str, Grid]:
    """Check cross-key consistency; return the grid of every dataset. ``cache_dir``: where
    the attack estimators' checks of their settings are remembered between DAG builds."""
    for key in ("datasets", "architectures", "sparsities", "training", "attack", "transfer",
                "report", "pruning", "replicates"):
        _require(key in config, f"config key {key!r} is missing")
    check_inputs(config)
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
    _check_attacks(config, cache_dir)
    _check_references(config, archs, sparsities)
    _check_pruning(config)
    return grids


def pruning_methods(config: dict) -> list[str]:
    """The configured pruning methods (``pruning.methods``; default: oneshot)."""
    return list((config.get("pruning") or {}).get("methods") or ["oneshot"])


PRUNING_KEYS = ("prune_fc", "rewind_epoch", "rewind_step", "methods")


def _check_pruning(config: dict) -> None:
    import difflib

    from .pruning import METHODS, get_method

    p = config["pruning"]
    methods = pruning_methods(config)
    dup = _duplicates(methods)
    if dup:
        raise ConfigError(f"config key 'pruning.methods' lists {dup[0]!r} more than once; "
                          "list each method once")
    for name in methods:
        try:
            get_method(name, p.get(name), key=f"pruning.{name}")
        except ValueError as err:
            raise ConfigError(str(err)) from None
        base = METHODS[name].base_mask
        _require(base is None or base in methods, f"config key 'pruning.methods': {name!r} "
                 f"builds on the {base!r} mask; add {base!r} to the list")
    for key, value in p.items():
        if key in PRUNING_KEYS:
            continue
        if key not in METHODS:
            m = difflib.get_close_matches(key, list(PRUNING_KEYS) + sorted(METHODS), n=1)
            hint = f" (did you mean {m[0]!r}?)" if m else ""
            raise ConfigError(f"config key 'pruning.{key}': unknown key{hint}; known keys: "
                              f"{list(PRUNING_KEYS)} or the settings of a pruning method "
                              f"{sorted(METHODS)}")
        _require(isinstance(value, dict), f"config key 'pruning.{key}': the settings of a "
                 "pruning method are a mapping")
        try:
            get_method(key, value, key=f"pruning.{key}")
        except ValueError as err:
            raise ConfigError(str(err)) from None
    epoch, step = p.get("rewind_epoch"), p.get("rewind_step")
    _require((epoch is None) != (step is None), "config keys 'pruning.rewind_epoch' and "
             f"'pruning.rewind_step': set exactly one of them (got {epoch!r} and {step!r}); "
             "null the other")
    r = config["report"]
    t1 = r.get("table1_method", "oneshot")
    _require(t1 in methods, f"config key 'report.table1_method': {t1!r} is not one of "
             f"pruning.methods {methods}")
    tm = config["transfer"].get("method", "oneshot")
    _require(tm in methods, f"config key 'transfer.method': {tm!r} is not one of "
             f"pruning.methods {methods}")
    ref = config.get("references") or {}
    for m in ref.get("methods", ["oneshot"]) if ref.get("count", 0) else []:
        _require(m in methods, f"config key 'references.methods': {m!r} is not one of "
                 f"pruning.methods {methods}")


def _check_references(config: dict, archs, sparsities) -> None:
    from .attacks import ATTACKS, check_attack_config

    ref = config.get("references") or {}
    count = ref.get("count", 0)
    _require(isinstance(count, int) and not isinstance(count, bool) and
             (count == 0 or count >= 2), f"config key 'references.count': {count!r} must be 0 "
             "(no reference attacks) or at least 2 (16+ for per-sample variances)")
    _require(count % 2 == 0, f"config key 'references.count': {count} is odd; every pool "
             "sample is IN for exactly half of the references, so the count must be even "
             f"(use {count - 1} or {count + 1})")
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


def _check_attacks(config: dict, cache_dir=None) -> None:
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
    problems = check_attack_config(names, {n: a.get(n) for n in names}, cache_dir)
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


# --------------------------------------------------------------------------- input checks
# Checks of values that would otherwise pass the DAG and fail (or silently misbehave) only
# when a job runs (issue 10). Each names the key and what to do.
MAX_SEED = 2**32 - 1  # numpy and scikit-learn seeds are 32-bit


def check_inputs(config: dict) -> None:
    """Every DAG-time input check below (called by :func:`check_config`)."""
    _check_duplicate_values(config)
    _check_sparsity_folder_names(config)
    _check_seeds(config)
    _check_dataset_inputs(config)
    _check_attack_inputs(config)
    _check_finite_numbers(config)
    _check_rewind_epoch(config)
    _check_rewind_step(config)


def _duplicates(values) -> list:
    seen, dup = set(), []
    for v in values:
        if v in seen and v not in dup:
            dup.append(v)
        seen.add(v)
    return dup


def _check_duplicate_values(config: dict) -> None:
    lists = {"architectures": config.get("architectures"),
             "attack.sample_sizes": (config.get("attack") or {}).get("sample_sizes")}
    for name, ds in (config.get("datasets") or {}).items():
        if isinstance(ds, dict):
            lists[f"datasets.{name}.attack_sample_sizes"] = ds.get("attack_sample_sizes")
    for k, v in (config.get("transfer") or {}).items():
        if isinstance(v, list):
            lists[f"transfer.{k}"] = v
    for ds, archs in (config.get("training") or {}).items():
        for arch, rec in (archs or {}).items():
            if isinstance(rec, dict):
                lists[f"training.{ds}.{arch}.milestones"] = rec.get("milestones")
    for key in ("sparsities",):
        lists[key] = config.get(key)
    for key, values in lists.items():
        if not isinstance(values, list):
            continue
        norm = [float(v) if "sparsities" in key else v for v in values]
        dup = _duplicates(norm)
        if dup:
            raise ConfigError(f"config key {key!r} lists {dup[0]!r} more than once ({values}); "
                              "list each value once")


def _check_sparsity_folder_names(config: dict) -> None:
    for key, values in (("sparsities", config.get("sparsities")),
                        ("transfer.sparsities", (config.get("transfer") or {}).get("sparsities"))):
        by_name: dict[str, float] = {}
        for v in values or []:
            try:
                name = fmt_sparsity(v)
            except (ConfigError, TypeError, ValueError):
                continue  # out of range: reported by the range check
            other = by_name.setdefault(name, float(v))
            _require(other == float(v), f"config key {key!r}: {other} and {v} cannot be told "
                     f"apart in folder names (both become 'sparsity-{name}'); make them differ "
                     "in the first 6 significant digits")


def _check_seeds(config: dict) -> None:
    seeds = {"attack.seed": (config.get("attack") or {}).get("seed"),
             "references.seed": (config.get("references") or {}).get("seed")}
    for i, r in enumerate(config.get("replicates") or []):
        seeds[f"replicates[{i}]"] = r
    for name, ds in (config.get("datasets") or {}).items():
        if isinstance(ds, dict):
            seeds[f"datasets.{name}.split_seed"] = ds.get("split_seed")
    for key, v in seeds.items():
        if v is None:
            continue
        _require(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_SEED,
                 f"config key {key!r}: {v!r} is not a seed; use an integer in [0, {MAX_SEED}]")


def _check_dataset_inputs(config: dict) -> None:
    from .sources import source_info

    for name, ds in (config.get("datasets") or {}).items():
        if not isinstance(ds, dict) or ds.get("source") not in SOURCES:
            continue
        key, source = f"datasets.{name}", ds["source"]
        root = ds.get("root")
        if ds.get("download"):
            _require(source in ("cifar10", "cifar100"), f"config key '{key}.download': only "
                     f"CIFAR can be downloaded, not {source!r}; set it to false and put the "
                     f"files under '{key}.root'")
            _require(root not in (None, ""), f"config key '{key}.download' is true but "
                     f"'{key}.root' is empty: set '{key}.root' to the folder to download into")
        if source == "digits":
            classes = source_info(source).num_classes
            for k in ("members", "nonmembers"):
                n = ds.get(k)
                _require(n is None or n >= classes, f"config key '{key}.{k}': {n} is fewer "
                         f"than the {classes} classes of digits (the split is stratified, one "
                         f"sample of each class at least); raise it to {classes} or more")


def root_warnings(config: dict) -> list[str]:
    """DAG-time warnings: a dataset root that does not exist (the job fails naming it)."""
    from pathlib import Path

    out = []
    for name, ds in (config.get("datasets") or {}).items():
        if not isinstance(ds, dict) or ds.get("source") in (None, "digits"):
            continue
        root = ds.get("root")
        key = f"datasets.{name}.root"
        if root in (None, ""):
            out.append(f"config key {key!r} is empty: dataset {name!r} ({ds['source']}) needs "
                       "its files; the membership_split job will fail until it is set")
        elif not Path(root).expanduser().exists() and not ds.get("download"):
            out.append(f"config key {key!r}: {root} does not exist; put the {ds['source']} "
                       "files there (or set download: true for CIFAR) before running the "
                       "jobs that read it")
    return out


def _check_attack_inputs(config: dict) -> None:
    attack = config.get("attack") or {}
    tf = attack.get("test_fraction", 0.5)
    lists = {"attack.sample_sizes": attack.get("sample_sizes")}
    for name, ds in (config.get("datasets") or {}).items():
        if isinstance(ds, dict):
            lists[f"datasets.{name}.attack_sample_sizes"] = ds.get("attack_sample_sizes")
    for key, sizes in lists.items():
        for n in sizes or []:
            if not isinstance(n, int) or n <= 0 or n % 2:
                continue  # reported by the sample-size checks
            half = n // 2
            n_test = int(round(half * tf))
            _require(0 < n_test < half, f"config key {key!r}: {n} is too small to split into "
                     f"attack-train and attack-test halves at attack.test_fraction={tf} (each "
                     "needs a member and a non-member at least); raise it")


def _check_rewind_epoch(config: dict) -> None:
    rewind = (config.get("pruning") or {}).get("rewind_epoch")
    if not isinstance(rewind, int):
        return
    for ds, archs in (config.get("training") or {}).items():
        if ds not in (config.get("datasets") or {}):
            continue
        for arch, rec in (archs or {}).items():
            epochs = rec.get("epochs") if isinstance(rec, dict) else None
            if isinstance(epochs, int):
                _require(rewind < epochs, f"config key 'pruning.rewind_epoch': {rewind} is not "
                         f"below training.{ds}.{arch}.epochs={epochs} (a ticket rewound to "
                         "the last epoch is never retrained); lower it or raise the epochs")


def _check_finite_numbers(config: dict, path: str = "") -> None:
    """No NaN or infinity anywhere but in the attack models' own settings (which their
    estimator checks): ``lr: .nan`` would otherwise train a network of NaNs, three times."""
    items = (config.items() if isinstance(config, dict)
             else enumerate(config) if isinstance(config, list) else ())
    for k, v in items:
        key = f"{path}.{k}" if path and isinstance(k, str) else (
            f"{path}[{k}]" if path else str(k))
        if path == "attack" and isinstance(v, dict):
            continue  # attack.<model>: scikit-learn validates its own settings
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"config key {key!r}: {v} is not a finite number; give a real "
                              "value")
        _check_finite_numbers(v, key)


def _check_rewind_step(config: dict) -> None:
    """``pruning.rewind_step`` must lie before the last optimizer step of every target run
    (steps per epoch: members // batch_size, the pipeline drops a last short batch)."""
    step = (config.get("pruning") or {}).get("rewind_step")
    if not isinstance(step, int) or isinstance(step, bool) \
            or (config.get("pruning") or {}).get("rewind_epoch") is not None:
        return  # not set, or both set (named by the check of pruning)
    for ds, archs in (config.get("training") or {}).items():
        ds_cfg = (config.get("datasets") or {}).get(ds)
        if not isinstance(ds_cfg, dict) or ds_cfg.get("source") not in SOURCES:
            continue
        n_mem = split_sizes(ds_cfg, ds_cfg["source"])[0]
        for arch, rec in (archs or {}).items():
            if arch not in (config.get("architectures") or []) or not isinstance(rec, dict):
                continue
            epochs, bs = rec.get("epochs"), rec.get("batch_size")
            if not (isinstance(epochs, int) and isinstance(bs, int) and bs > 0):
                continue
            total = epochs * max(n_mem // bs, 1)
            _require(0 <= step < total, f"config key 'pruning.rewind_step': {step} is not "
                     f"within the {total} optimizer steps of training.{ds}.{arch} ({epochs} "
                     f"epochs x {max(n_mem // bs, 1)} steps of {bs} of the {n_mem} members); "
                     "lower it or raise the epochs")


def schema_problem(config: dict, schema_path) -> str | None:
    """The config's most relevant JSON-schema error in one line, or ``None``.

    Run before ``snakemake.utils.validate`` (which then sets the defaults): that one prints
    the whole schema, about 240 lines, for a one-letter typo.
    """
    import jsonschema
    import yaml
    from jsonschema.exceptions import best_match

    from pathlib import Path

    schema = yaml.safe_load(Path(schema_path).read_text())
    err = best_match(jsonschema.Draft202012Validator(schema).iter_errors(config))
    return None if err is None else schema_error_message(err, schema)


def schema_error_message(ve, root_schema: dict | None = None) -> str:
    """One line for a ``jsonschema`` error: the failing key and its allowed values."""
    path = ".".join(str(p) for p in ve.absolute_path)
    where = f"config key {path!r}" if path else "config"
    schema = ve.schema if isinstance(ve.schema, dict) else {}
    sp = list(ve.absolute_schema_path)
    if root_schema is not None and "additionalProperties" in sp and ve.absolute_path:
        # a key the object does not declare, checked against its catch-all (e.g. the
        # attack.<name> settings): name it as an unknown key, with the declared ones
        parent = root_schema
        for part in sp[:sp.index("additionalProperties")]:
            parent = parent[part]
        declared = sorted(parent.get("properties", {}))
        key = str(list(ve.absolute_path)[len(list(ve.absolute_path)) - 1])
        if key not in declared and ve.validator == "type":
            import difflib

            m = difflib.get_close_matches(key, declared, n=1)
            hint = f" (did you mean {m[0]!r}?)" if m else ""
            return (f"{where}: unknown key {key!r}{hint}; known keys: {declared}, or "
                    f"{ve.validator_value}-valued settings of a registered attack or pruning "
                    "method")
    if ve.validator == "additionalProperties" and isinstance(ve.instance, dict):
        import difflib

        allowed = sorted(schema.get("properties", {}))
        unknown = sorted(set(ve.instance) - set(allowed))
        hints = [f"{u!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(
            str(u), allowed, n=1)) else repr(u) for u in unknown]
        return f"{where}: unknown key(s) {', '.join(hints)}; allowed: {allowed}"
    if ve.validator == "enum":
        return f"{where}: {ve.instance!r} is not one of {ve.validator_value}"
    msg = ve.message if len(ve.message) <= 300 else ve.message[:300] + "..."
    return f"{where}: {msg}"
