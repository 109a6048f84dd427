"""Cost of the attack stage at scale: every attack, the bootstrap and the slices, measured on
synthetic confidence tables, and the total for one ImageNet-sized model.

    .venv/bin/python benchmarks/attack_scaling.py --quick        # <= 3 minutes, extrapolates
    .venv/bin/python benchmarks/attack_scaling.py                # the whole grid (hours)
    .venv/bin/python benchmarks/attack_scaling.py --only bootstrap --sizes 1000,10000

Every measurement runs in its own process (so its peak memory is its own: the maximum
resident set size of that process, Python and libraries included; ``--quick`` runs a step's
two sizes in one process, the smaller first), with one thread per
library (OMP/MKL/OpenBLAS_NUM_THREADS=--threads, default 1: a fit-attack job has one
thread, Snakemake sets these variables to the job's threads); building the synthetic data is
not timed. Sizes: ``n`` is the attack sample (n/2 members, n/2 non-members; half of each in
attack-train, half in attack-test, class-stratified by the pipeline's own sampler), ``C``
the classes (the features are C-dimensional softmax vectors), ``K`` the reference models.

Steps:

- ``attack:<name>``: ``fit_score`` of the attack with ``--config``'s settings (default
  ``config/paper.yaml``): fit on attack-train, score every row;
- ``bootstrap``: ``bootstrap_metrics`` of one attack's scores on the attack-test rows (n/2),
  ``attack.n_bootstrap`` resamples (a reference attack is evaluated on every scored row and
  again on the attack-test rows: counted as a bootstrap on n rows plus one on n/2);
- ``slices``: every slice of one model as the slices table computes them (each class of
  the attack-test rows, then correct / incorrect) for each ``report.slice_attacks`` attack;
- ``slice_one``: one class's slice of n rows (the issue's "before" measurement).

The ImageNet-sized model (n = 50k, C = 1000, K = 16) costs the sum over the attacks that
``--config`` runs on dataset ``imagenet`` (``attack.models`` and ``attack.baselines``, and
``references.attacks`` where ``references.datasets`` includes it) of the attack, its interval
in the fit-attack job and its interval again in the summary's replicate mean, plus the
slices. ``imagenet_model_seconds`` is that sum; ``imagenet_model_seconds_with_references``
adds the reference attacks with K = 16 for a config that gives ImageNet none (config/paper.yaml
gives it references: they are in both). A fit-attack job reads the K reference tables one at
a time and keeps per-row statistics (:mod:`lottery_mia.attacks.reference_rows`): held whole,
they would be K x 2n x C float32 logits, 6.4 GB.

``--quick`` measures every step at n = 4k and 8k (C = 1000; reference attacks with K = 4
and 16, their tables written to files and read back by ``add_references`` as a fit-attack
job reads them) with the estimators in the regime they use at the ImageNet size (the SVM
above its exact-size cap, the MLP with early stopping), and extrapolates each step's wall
time to n = 50k by the power law through its two points, t(50k) = t(8k) (50k / 8k)^b with
b = log2(t(8k) / t(4k)) clipped to [1, 2.5] (no step costs less than linear time). Peak memory
is extrapolated the same way from what each step's process added above an idle one (clipped
to [0.5, 1.5]: tables are n x C and the code keeps no n^2 object), plus the idle process.
An attack that trains a classifier for a fixed number of epochs on at most ``max_rows``
shadow rows (SAMIA) is measured at 2 epochs; its training time (``fit_seconds``, linear in
the epochs) is multiplied by the config's epochs / 2 and, where both sizes train on the
same capped number of rows, taken as constant in n; the rest of it (reading the shadow
rows, scoring the target) is extrapolated by the power law.
The last line is JSON.

``--storage`` prints a confidence table's bytes per row at 1000 classes for each logits
dtype, and what half-precision logits change in LiRA's and RMIA's scores and metrics.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGENET = {"n": 50_000, "C": 1000, "K": 16}
TARGETS = {"imagenet_model_seconds": 1800, "peak_rss_gb": 4.0}


# --------------------------------------------------------------------------- one measurement
def synthetic(n: int, classes: int, k: int = 0, seed: int = 0, parent: bool = False,
              sensitivity: bool = False):
    """An AttackData of an n-row attack sample: a target that is more confident on its
    members, and K reference models, each trained on a seeded half of the rows (every row IN
    for half of them), on the sample's rows and on the population (its non-members); with
    ``parent``, the target's dense parent and each reference's, as the pair attacks read
    them (written and read back by :func:`add_parent`); with ``sensitivity``, every table
    has SAMIA's sensitivity column (n x C float32, as the scoring job writes it)."""
    import numpy as np
    import pandas as pd

    from lottery_mia.attack_samples import make_attack_sample
    from lottery_mia.attacks import AttackData
    from lottery_mia.confidences import ConfidenceTable

    rng = np.random.default_rng(seed)
    half = n // 2
    membership = pd.DataFrame({
        "sample_id": np.arange(n), "pool": "all", "pool_index": np.arange(n),
        "label": np.r_[np.arange(half), np.arange(half)] % classes,
        "member": np.r_[np.ones(half, bool), np.zeros(half, bool)], "scored": True})
    sample = make_attack_sample(membership, n, seed=seed)
    ids = sample["sample_id"].to_numpy()
    label = membership["label"].to_numpy()[ids]

    def logits(trained: np.ndarray) -> np.ndarray:
        z = rng.standard_normal((n, classes), dtype=np.float32)
        margin = np.where(trained, rng.normal(6.0, 1.5, n), rng.normal(4.5, 2.5, n))
        z[np.arange(n), label] += margin.astype(np.float32)
        return z

    def sens(trained: np.ndarray):
        if not sensitivity:
            return None
        s = rng.standard_normal((n, classes), dtype=np.float32)  # lognormal, in float32
        np.exp(0.5 * s, out=s)
        s *= np.where(trained, 0.8, 1.0).astype(np.float32)[:, None]
        return s

    member = sample["member"].to_numpy()
    target = ConfidenceTable.from_logits(ids, label, member, logits(member),
                                         {"dataset": "synthetic", "arch": "resnet18"},
                                         sensitivity=sens(member))
    data = AttackData(target=target, sample=sample)
    dense = {"dataset": "synthetic", "arch": "resnet18", "method": "dense", "sparsity": 0.0}
    parents = []
    if k or parent:  # written as the pipeline writes them and read back as a job does
        import tempfile

        from lottery_mia.attacks import add_parent, add_references
        from lottery_mia.confidences import write_confidences

        inc = np.zeros((k, n), bool)
        for j in range(0, k, 2):  # complementary pairs: each row IN for exactly half
            pick = rng.random(n) < 0.5
            inc[j], inc[j + 1] = pick, ~pick
        import atexit
        import shutil

        folder = Path(tempfile.mkdtemp(prefix="attack-scaling-"))
        atexit.register(shutil.rmtree, folder, True)
        write_confidences(target, folder / "target.parquet")
        if parent:
            write_confidences(ConfidenceTable.from_logits(ids, label, member, logits(member),
                                                          dense), folder / "parent.parquet")
        paths = []
        for j in range(k):  # one reference's logits in memory at a time
            paths.append(folder / f"ref-{j}.parquet")
            write_confidences(ConfidenceTable.from_logits(ids, label, inc[j], logits(inc[j]),
                                                          sensitivity=sens(inc[j])),
                              paths[-1])
            if parent:
                parents.append(folder / f"ref-{j}-dense.parquet")
                write_confidences(ConfidenceTable.from_logits(ids, label, inc[j],
                                                              logits(inc[j]), dense),
                                  parents[-1])
        pd.DataFrame({"reference": np.repeat(np.arange(k), n), "sample_id": np.tile(ids, k),
                      "included": inc.ravel()}).to_parquet(folder / "inclusion.parquet",
                                                          index=False)
        if k:
            data = add_references(data, paths, folder / "inclusion.parquet",
                                  folder / "target.parquet")
        if parent:
            data = add_parent(data, folder / "parent.parquet", parents)
    return data


THUMBNAIL = 3 * 8 * 8  # the quantile attack's input features per row (an RGB thumbnail)


def with_public(data, n_public: int, seed: int = 0):
    """``data`` with ``n_public`` scored non-members outside the attack sample (fold
    ``outside``) and a thumbnail of every row (``inputs``): what the quantile attack reads.
    ImageNet's geometry: 50k scored non-members, at most half of them in the sample."""
    import numpy as np
    import pandas as pd

    from lottery_mia.confidences import ConfidenceTable

    rng = np.random.default_rng(seed + 1)
    t, c = data.target, data.target.logits.shape[1]
    ids = np.arange(n_public, dtype=np.int64) + int(t.sample_id.max()) + 1
    label = rng.integers(0, c, n_public)
    z = rng.standard_normal((n_public, c), dtype=np.float32)
    z[np.arange(n_public), label] += rng.normal(4.5, 2.5, n_public).astype(np.float32)
    target = ConfidenceTable.from_logits(np.r_[t.sample_id, ids], np.r_[t.label, label],
                                         np.r_[t.member, np.zeros(n_public, bool)],
                                         np.concatenate([t.logits, z]), t.metadata)
    sample = pd.concat([data.sample, pd.DataFrame({
        "sample_id": ids, "label": label, "member": False, "fold": "outside"})],
        ignore_index=True)
    data.target, data.sample = target, sample
    data.inputs = rng.random((len(sample), THUMBNAIL), dtype=np.float32)
    return data


def measure(spec: dict) -> dict:
    """Run one step of ``spec`` in this process; its wall and CPU seconds."""
    import numpy as np

    import lottery_mia.stats.resampling as M
    from lottery_mia.attacks import get_attack

    if not spec.get("warm"):  # first on a few rows: imports and caches are not timed
        measure({**spec, "n": 400, "n_boot": 50, "warm": True})
    step, n, c, k = spec["step"], spec["n"], spec["C"], spec.get("K", 0)
    n_boot = spec.get("n_boot", 1000)
    name = step.split(":", 1)[1] if step.startswith("attack:") else None
    data = synthetic(n, c, k, parent=bool(name and get_attack(name).needs_parent),
                     sensitivity=bool(name and get_attack(name).needs_sensitivity))
    if name and get_attack(name).needs_inputs:  # public non-members: as many as the sample
        data = with_public(data, n)
    y = data.is_member
    # the bootstrap and slice steps' scores (ties-free); not made for an attack step, whose
    # peak memory is the attack's (an n x C float64 loss would count against it)
    score = None if name else \
        -data.target.loss + np.random.default_rng(1).normal(0, 0.5, len(y))
    t0, c0 = time.perf_counter(), time.process_time()
    if step.startswith("attack:"):
        name = step.split(":", 1)[1]
        out = get_attack(name).factory(spec.get("settings"), 0).fit_score(data)
        info = {k_: v for k_, v in out.info.items() if isinstance(v, (bool, int, float, str))}
    elif step == "bootstrap":
        M.bootstrap_metrics(y[data.test], score[data.test], 0.0, n_boot=n_boot, seed=0)
        info = {}
    elif step == "slice_one":  # one class slice holding a quarter of n rows
        mask = np.arange(n) % 4 == 0
        M.slice_metrics(y, score, 0.0, mask, n_boot=n_boot, seed=0)
        info = {}
    elif step == "slices":
        test = data.test
        labels, yt = data.target.label[test], y[test]
        correct = data.target.correct[test][None]
        slices = 0
        for a in range(spec.get("attacks", 2)):
            s = (score + a)[test][None]
            for cls in np.unique(labels):
                M.slice_metrics(yt, s, 0.0, np.broadcast_to(labels == cls, s.shape),
                                n_boot=n_boot, seed=0)
                slices += 1
            for mask in (correct, ~correct):
                if mask.any(axis=1).all():
                    M.slice_metrics(yt, s, 0.0, mask, n_boot=n_boot, seed=0)
                    slices += 1
        info = {"slices": slices}
    else:
        raise ValueError(f"unknown step {step!r}")
    return {**spec, "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
            "info": info}


def child_main(spec_json: str) -> None:
    """Run one spec, or a list of specs in turn (each one's peak memory is the process's
    peak after it: run them in ascending size)."""
    import resource

    specs = json.loads(spec_json)
    for i, spec in enumerate(specs if isinstance(specs, list) else [specs]):
        sys.path.insert(0, spec["src"])
        if spec["step"] == "idle":
            import lottery_mia.attacks  # noqa: F401  (what every measurement imports)
            import sklearn.ensemble  # noqa: F401
            out = {**spec, "wall_s": 0.0, "cpu_s": 0.0, "info": {}}
        else:
            out = measure({**spec, "warm": i > 0})
        out["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print("RESULT " + json.dumps(out), flush=True)


# --------------------------------------------------------------------------- the grid
def run(specs: list[dict], threads: int, timeout: float) -> list[dict]:
    """Run ``specs`` in one fresh process, one thread per library."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
        env[var] = str(threads)
    try:
        proc = subprocess.run([sys.executable, __file__, "--one", json.dumps(specs)],
                              env=env, capture_output=True, text=True,
                              timeout=timeout * len(specs))
        stdout, err = proc.stdout, (proc.stderr.strip().splitlines() or ["no output"])[-1]
    except subprocess.TimeoutExpired as e:
        stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = f"over {timeout:.0f} s"
    done = [json.loads(line[7:]) for line in stdout.splitlines() if line.startswith("RESULT ")]
    return done + [{**spec, "error": err[:200]} for spec in specs[len(done):]]


def config_of(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text())


def imagenet_attacks(cfg: dict) -> tuple[list[str], list[str]]:
    """(attacks the config runs on an ImageNet model, its reference attacks)."""
    a = cfg["attack"]
    own = list(a.get("models", [])) + list(a.get("baselines", []))
    refs = cfg.get("references", {})
    ref_attacks = list(refs.get("attacks", [])) if refs.get("count") else []
    on_imagenet = refs.get("datasets") is None or "imagenet" in refs.get("datasets", [])
    return (own + (ref_attacks if on_imagenet else []),
            [] if on_imagenet else ref_attacks)


def is_reference(name: str, src: str) -> bool:
    sys.path.insert(0, src)
    from lottery_mia.attacks import get_attack

    return get_attack(name).needs_references


QUICK_EPOCHS = 2  # a trained-for-epochs attack (SAMIA) measured at this many epochs


def at_scale(name: str, settings: dict, src: str) -> tuple[dict, float]:
    """``settings`` with the estimator in the regime it uses at the ImageNet size (where the
    code measured has such settings: an earlier checkout's has not), and the factor its
    measured training time is scaled by: an attack that trains for a fixed number of epochs
    on a bounded set of rows (SAMIA: ``epochs``, ``max_rows``) is measured at
    ``QUICK_EPOCHS`` and its training time (``fit_seconds``, linear in the epochs by
    construction) multiplied by epochs / QUICK_EPOCHS."""
    sys.path.insert(0, src)
    from lottery_mia.attacks import ATTACKS, classifiers

    own = getattr(classifiers, "OWN_SETTINGS", {}).get(name, {})
    s = dict(settings or {})
    epochs = {**ATTACKS[name].defaults, **s}.get("epochs")
    if isinstance(epochs, int) and epochs > QUICK_EPOCHS:
        s["epochs"] = QUICK_EPOCHS
        return s, epochs / QUICK_EPOCHS
    if "exact_max_rows" in own and s.get("exact_max_rows", 1) is not None:
        s["exact_max_rows"] = 1
    if "early_stopping_min_rows" in own and s.get("early_stopping", True):
        s["early_stopping_min_rows"] = 1
    return s, 1.0


def grid(args, cfg: dict) -> list[dict]:
    """The measurements to make."""
    src = str(Path(args.src).resolve())
    n_boot = int(cfg["attack"].get("n_bootstrap", 1000))
    attacks, extra_refs = imagenet_attacks(cfg)
    all_attacks = attacks + extra_refs
    specs = []

    def add(step, n, c, k=0, **kw):
        specs.append({"step": step, "n": n, "C": c, "K": k, "src": src, "n_boot": n_boot,
                      **kw})

    if args.only:
        wanted = args.only.split(",")
        all_attacks = [a for a in all_attacks if f"attack:{a}" in wanted or a in wanted]
    else:
        wanted = None
    sizes = [int(x) for x in args.sizes.split(",")]
    classes = [int(x) for x in args.classes.split(",")]
    refs_k = [int(x) for x in args.refs.split(",")]
    for name in all_attacks:
        settings, epochs_scale = cfg["attack"].get(name) or {}, 1.0
        if args.quick:
            settings, epochs_scale = at_scale(name, settings, src)
        ref = is_reference(name, src)
        for n in sizes:
            for c in ([classes[-1]] if args.quick and ref else classes):
                for k in (refs_k if ref else [0]):
                    gb = 2 * k * n * c * 4 / 1e9  # the references' logits, sample + pop.
                    if ref and gb > args.max_reference_gb:
                        continue
                    add(f"attack:{name}", n, c, k, settings=settings,
                        epochs_scale=epochs_scale)
    for step in ("bootstrap", "slices", "slice_one"):
        if wanted is not None and step not in wanted:
            continue
        if step == "slice_one" and args.quick:
            continue
        for n in sizes:
            for c in (classes if step == "slices" else [classes[-1]]):
                add(step, n, c, attacks=len(cfg.get("report", {}).get("slice_attacks") or
                                            ["mlp", "loss"]))
    return specs


def power_law(t_small: float, t_big: float, ratio: float, to: float) -> tuple[float, float]:
    """Extrapolate t_big at size s to size s * to by t = a s^b fitted through two sizes
    ``ratio`` apart (b clipped to [1, 2.5]); returns (estimate, b)."""
    b = math.log(max(t_big, 1e-6) / max(t_small, 1e-6)) / math.log(ratio)
    b = min(max(b, 1.0), 2.5)
    return t_big * to ** b, b


def estimate(results: list[dict], cfg: dict, src: str, idle_gb: float) -> dict:
    """The ImageNet-sized model from the quick grid (see the module doc)."""
    n_big = max(r["n"] for r in results)
    n_small = min(r["n"] for r in results)
    ratio, to = n_big / n_small, IMAGENET["n"] / n_big
    attacks, extra_refs = imagenet_attacks(cfg)

    def point(step, n, **kw):
        for r in results:
            if r["step"] == step and r["n"] == n and "error" not in r and all(
                    r.get(k) == v for k, v in kw.items()):
                return r
        raise KeyError(step)

    parts, exps, missing = {}, {}, []

    def extrapolate(step, **kw):
        small, big = point(step, n_small, **kw), point(step, n_big, **kw)
        c_scale = IMAGENET["C"] / kw["C"]  # linear in the classes (features, logits)
        mem_small = max(small["peak_rss_gb"] - idle_gb, 1e-3)
        mem_big = max(big["peak_rss_gb"] - idle_gb, 1e-3)
        bm = min(max(math.log(mem_big / mem_small) / math.log(ratio), 0.5), 1.5)
        fit_s, fit_b = small["info"].get("fit_seconds"), big["info"].get("fit_seconds")
        if fit_s is not None and fit_b is not None:
            # a classifier trained for a fixed number of epochs (measured at QUICK_EPOCHS,
            # scaled to the config's): its training costs the same at every n once its
            # rows are capped (the same shadow_rows at both sizes), the rest by power law
            scale = big.get("epochs_scale", 1.0)
            t, b = power_law(small["wall_s"] - fit_s, big["wall_s"] - fit_b, ratio, to)
            if small["info"].get("shadow_rows") == big["info"].get("shadow_rows"):
                t += fit_b * scale
            else:
                t += power_law(fit_s, fit_b, ratio, to)[0] * scale
        else:
            t, b = power_law(small["wall_s"], big["wall_s"], ratio, to)
        return t * c_scale, idle_gb + mem_big * to ** bm * c_scale, b

    c_own = max(r["C"] for r in results if not r.get("K"))
    c_ref = max([r["C"] for r in results if r.get("K")] or [c_own])
    k_ref = IMAGENET["K"] if any(r.get("K") == IMAGENET["K"] for r in results) else \
        max([r.get("K", 0) for r in results] or [0])
    for name in attacks + extra_refs:
        ref = is_reference(name, src)
        kw = {"K": k_ref, "C": c_ref} if ref else {"C": c_own}
        try:
            t, mem, b = extrapolate(f"attack:{name}", **kw)
        except KeyError:
            missing.append(f"attack:{name}")
            continue
        parts[f"attack:{name}"] = (t, mem)
        exps[f"attack:{name}"] = round(b, 2)
    for step in ("bootstrap", "slices"):
        try:
            t, mem, b = extrapolate(step, C=c_own)
        except KeyError:
            missing.append(step)
            continue
        if step == "bootstrap":  # not C-dependent
            t = t * c_own / IMAGENET["C"]
        parts[step] = (t, mem)
        exps[step] = round(b, 2)
    t_boot = parts.get("bootstrap", (0.0, 0.0))[0]
    t_boot_all = t_boot * 2 ** max(exps.get("bootstrap", 1.0), 1.0)  # a reference attack's n rows

    def total(names):
        names = [a for a in names if f"attack:{a}" in parts]
        t = sum(parts[f"attack:{a}"][0] for a in names)
        # an interval in the fit-attack job and one in the summary's replicate mean
        for a in names:
            t += 2 * (t_boot_all + t_boot if is_reference(a, src) else t_boot)
        return t + parts.get("slices", (0.0, 0.0))[0]

    steps = [f"attack:{a}" for a in attacks] + ["bootstrap", "slices"]
    mem = max(m for _, m in parts.values())
    mem_own = max(m for k, (_, m) in parts.items() if k in steps)
    out = {"imagenet_model_seconds": round(total(attacks), 1),
           "peak_rss_gb": round(mem_own, 2),
           "imagenet_model_seconds_with_references": round(total(attacks + extra_refs), 1),
           "peak_rss_gb_with_references": round(mem, 2),
           "parts_seconds": {k: round(v[0], 1) for k, v in parts.items()},
           "exponents": exps}
    if missing:
        out["not_measured"] = missing  # left out of the sums
    return out


def measured_imagenet(results: list[dict], cfg: dict, src: str) -> dict | None:
    """The ImageNet-sized model from full-size measurements, where the grid has them."""
    attacks, extra_refs = imagenet_attacks(cfg)
    n, c = IMAGENET["n"], IMAGENET["C"]

    def get(step, **kw):
        for r in results:
            if r["step"] == step and "error" not in r and all(r.get(a) == b
                                                               for a, b in kw.items()):
                return r
        return None

    boot = get("bootstrap", n=n, C=c)
    sl = get("slices", n=n, C=c)
    rows = [get(f"attack:{a}", n=n, C=c) for a in attacks]
    if boot is None or sl is None or any(r is None for r in rows):
        return None
    t = sum(r["wall_s"] for r in rows) + sl["wall_s"] + 2 * len(rows) * boot["wall_s"]
    mem = max(r["peak_rss_gb"] for r in rows + [boot, sl])
    return {"imagenet_model_seconds": round(t, 1), "peak_rss_gb": round(mem, 2)}


def storage(src: str) -> dict:
    """Bytes per row of a confidence table at 1000 classes for each logits dtype, and what
    storing the logits in half precision changes in the reference attacks' scores (LiRA
    online and offline, RMIA; 20k rows, K = 16 references, the target and references all
    stored alike; logits of the synthetic tables, and 3x wider ones, up to ~44)."""
    import tempfile

    import numpy as np
    from scipy.stats import spearmanr

    sys.path.insert(0, src)
    from lottery_mia.attacks import get_attack
    from lottery_mia.confidences import ConfidenceTable, stored_logits, write_confidences
    from lottery_mia.stats.metrics import attack_metrics

    out: dict = {"bytes_per_row": {}}
    d = synthetic(2000, 1000, 0, seed=5)
    views = np.stack([d.target.scaled_logit(), d.target.scaled_logit() + 0.1], 1)
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in ("float32", "float16", "bfloat16"):
            for name, t in (("", d.target), ("+2 views", ConfidenceTable.from_logits(
                    d.target.sample_id, d.target.label, d.target.member, d.target.logits,
                    phi_views=views))):
                path = Path(tmp) / "t.parquet"
                write_confidences(t, path, logits_dtype=dtype)
                out["bytes_per_row"][dtype + name] = round(path.stat().st_size / len(t), 1)

    def stored(t, dtype, scale):
        return ConfidenceTable.from_logits(t.sample_id, t.label, t.member,
                                           stored_logits(t.logits * scale, dtype), t.metadata)

    effect = {}
    for scale in (1.0, 3.0):
        d = synthetic(20000, 1000, 16, seed=3)
        base = {}
        for dtype in ("float32", "float16", "bfloat16"):
            e = type(d)(target=stored(d.target, dtype, scale), sample=d.sample)
            e.references = [stored(r, dtype, scale) for r in d.references]
            e.reference_in = d.reference_in
            e.population = stored(d.population, dtype, scale)
            e.population_references = [stored(r, dtype, scale)
                                       for r in d.population_references]
            e.population_in = d.population_in
            phi = e.target.scaled_logit()
            for name in ("lira_online", "lira_offline", "rmia"):
                score = get_attack(name).factory({}, 0).fit_score(e).score
                m = attack_metrics(e.is_member, score)
                if dtype == "float32":
                    base[name] = score, m, phi
                    continue
                s0, m0, phi0 = base[name]
                key = f"{name} {dtype} logits x{scale:g} (max {np.abs(d.target.logits).max() * scale:.0f})"
                effect[key] = {
                    "max_abs_dphi": float(np.abs(phi - phi0).max()),
                    "max_abs_dscore": float(np.abs(score - s0).max()),
                    "spearman": round(float(spearmanr(score, s0)[0]), 6),
                    "dauc": round(m["auc"] - m0["auc"], 6),
                    "dtpr_at_fpr_0.01": round(m["tpr_at_fpr_0.01"] - m0["tpr_at_fpr_0.01"], 5),
                    "dtpr_at_fpr_0.001": round(m["tpr_at_fpr_0.001"]
                                               - m0["tpr_at_fpr_0.001"], 5)}
                print(key, json.dumps(effect[key]), flush=True)
    out["half_precision_effect"] = effect
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true",
                    help="n = 4k and 8k at C = 1000, extrapolated to the ImageNet model")
    ap.add_argument("--tiny", action="store_true", help="a smoke run of seconds (tests)")
    ap.add_argument("--config", default=str(ROOT / "config" / "paper.yaml"))
    ap.add_argument("--src", default=str(ROOT / "src"),
                    help="the lottery_mia source to measure (e.g. an earlier checkout's)")
    ap.add_argument("--sizes", default="1000,10000,50000")
    ap.add_argument("--classes", default="10,100,1000")
    ap.add_argument("--refs", default="4,16,64")
    ap.add_argument("--only", help="comma-separated steps or attack names")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per measurement")
    ap.add_argument("--max-reference-gb", type=float, default=4.0,
                    help="skip reference attacks whose K reference tables exceed this")
    ap.add_argument("--storage", action="store_true",
                    help="table bytes per row and the effect of half-precision logits")
    args = ap.parse_args()
    if args.one:
        child_main(args.one)
        return 0
    if args.storage:
        print(json.dumps(storage(str(Path(args.src).resolve()))))
        return 0
    if args.quick:
        args.sizes, args.classes, args.refs = "4000,8000", "1000", "4,16"
    if args.tiny:
        args.sizes, args.classes, args.refs, args.quick = "400,800", "10", "4", True
    cfg = config_of(Path(args.config))
    if args.tiny:
        cfg["attack"]["n_bootstrap"] = 200
        for name, fast in (("random_forest", {"n_estimators": 10}),
                           ("gradient_boosting", {"max_iter": 10}),
                           ("mlp", {"hidden_layer_sizes": [16], "max_iter": 30})):
            cfg["attack"][name] = {**(cfg["attack"].get(name) or {}), **fast}
    t_start = time.perf_counter()
    idle = run([{"step": "idle", "n": 0, "C": 0, "src": str(Path(args.src).resolve())}],
               args.threads, 120)[0]
    specs = grid(args, cfg)
    batches: dict = {}  # quick: each step's sizes in one process (fewer imports to pay)
    for spec in specs:
        key = (spec["step"], spec["C"], spec["K"]) if args.quick else len(batches)
        batches.setdefault(key, []).append(spec)
    results = []
    print(f"{'step':<30} {'n':>7} {'C':>5} {'K':>3} {'wall s':>9} {'cpu s':>9} "
          f"{'peak GB':>8}  notes", flush=True)
    for r in (r for batch in batches.values()
              for r in run(sorted(batch, key=lambda x: x["n"]), args.threads, args.timeout)):
        results.append(r)
        note = r.get("error") or " ".join(f"{k}={v}" for k, v in r.get("info", {}).items()
                                          if k in ("estimator", "n_iter", "slices",
                                                   "early_stopping"))
        print(f"{r['step']:<30} {r['n']:>7} {r['C']:>5} {r.get('K', 0):>3} "
              f"{r.get('wall_s', float('nan')):>9.2f} {r.get('cpu_s', float('nan')):>9.2f} "
              f"{r.get('peak_rss_gb', float('nan')):>8.2f}  {note}", flush=True)
    summary = {"threads": args.threads, "config": str(args.config),
               "idle_rss_gb": round(idle.get("peak_rss_gb", 0.0), 2),
               "load_average": round(os.getloadavg()[0], 2)}
    if args.quick:
        summary["mode"] = "tiny" if args.tiny else "quick"
        summary.update(estimate(results, cfg, str(Path(args.src).resolve()),
                                idle.get("peak_rss_gb", 0.0)))
        summary["extrapolated_from"] = f"n={args.sizes.replace(',', '+')}"
    else:
        summary["mode"] = "grid"
        measured = measured_imagenet(results, cfg, str(Path(args.src).resolve()))
        if measured:
            summary.update(measured)
    summary["benchmark_seconds"] = round(time.perf_counter() - t_start, 1)
    if ("imagenet_model_seconds" in summary and not args.tiny
            and not summary.get("not_measured")):
        summary["meets_targets"] = bool(
            summary["imagenet_model_seconds"] <= TARGETS["imagenet_model_seconds"]
            and summary["peak_rss_gb"] <= TARGETS["peak_rss_gb"])
    print(json.dumps(summary))
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
