# Config validation, wildcard constraints and input helpers. No torch here: cluster jobs
# re-read the Snakefile.
import functools
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import min_version, validate

min_version("9.0")

# The workflow runs the lottery_mia package of its own checkout, so code and workflow match:
# here for the Snakefile, and in every job through workflow/scripts/_checkout.py (no
# environment export, so `snakemake --lint` stays clean).
SRC = str(Path(workflow.basedir) / "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)

from lottery_mia.config import ConfigError, canonical, check_config, fmt_sparsity
from lottery_mia.config import how_to_run, sample_sizes_of, split_params
from lottery_mia.config import pruning_methods, root_warnings, schema_problem
from lottery_mia.pruning import METHODS, get_method

_problem = schema_problem(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")
if _problem:  # one line naming the key, not the whole schema
    raise WorkflowError(f"invalid config: {_problem}")
validate(config, schema="../workflow/schemas/config.schema.yaml")  # sets the defaults
try:
    GRIDS = check_config(config, cache_dir=Path(".snakemake") / "lottery-mia")
except ConfigError as err:
    raise WorkflowError(f"invalid config: {err}") from None
for _warning in root_warnings(config):
    logger.warning(f"warning: {_warning}")

R = "results"
REPORT = f"{R}/report.html"
GPU = 1 if str(config["device"]).startswith("cuda") else 0
THREADS = config.get("threads", {})
REPLICATES = [int(r) for r in config["replicates"]]
ATTACK = config["attack"]
ATTACKS = list(ATTACK.get("models", ["mlp"])) + list(
    ATTACK.get("baselines", ["loss", "confidence", "entropy", "modified_entropy"])
)
N_BOOTSTRAP = ATTACK.get("n_bootstrap", 1000)
REF = config.get("references") or {}
REF_COUNT = int(REF.get("count", 0))
REF_SEED = int(REF.get("seed", 1000))
REF_ATTACKS = list(REF.get("attacks", [])) if REF_COUNT else []
REF_METHODS = list(REF.get("methods", ["oneshot"]))
PRUNE = config["pruning"]
METHOD_NAMES = pruning_methods(config)  # ticket methods and controls, in config order


@functools.lru_cache(maxsize=None)
def method_of(name):
    """The registered pruning method ``name`` with its config settings (pruning.<name>)."""
    return get_method(name, PRUNE.get(name), key=f"pruning.{name}")


wildcard_constraints:
    dataset="|".join(sorted(config["datasets"])),
    arch="resnet18|resnet50",
    sparsity=r"0|0\.[0-9]+",
    run=r"seed-[0-9]+|ref-[0-9]+",
    method="|".join(["dense"] + sorted(METHODS)),
    point=r"sparsity-0\.[0-9]+|round-[0-9]+",
    n=r"[0-9]+",


def data_params(dataset):
    """Which data a job reads: the dataset, its source and (for sources read from files)
    its root folder (digits ships with scikit-learn: its root is never read)."""
    ds = config["datasets"][dataset]
    root = None if ds["source"] == "digits" else ds.get("root")
    return {"dataset": dataset, "source": ds["source"], "root": root}


# Recipe keys that say how a job reads its data, not what it trains: handed over by
# how_params, out of what Snakemake compares for reruns.
HOW_RECIPE_KEYS = ("num_workers",)


def recipe(dataset, arch):
    """The training recipe of (dataset, arch): what shapes the trained network."""
    r = config["training"][dataset][arch]
    return canonical({k: v for k, v in r.items() if k not in HOW_RECIPE_KEYS})


def how_params(w):
    """How and where a training, pruning or scoring job runs (device, CUDA graphs, GPU
    slots, loader workers): a lottery_mia.config.how_to_run object, which Snakemake does
    not compare when it decides what to rerun."""
    rt = config.get("runtime") or {}
    r = config["training"][w.dataset][w.arch]
    return how_to_run(device=config["device"],
                      runtime={"cuda_graphs": rt.get("cuda_graphs", "auto"),
                               "gpu_slots": rt.get("gpu_slots", 1)},
                      num_workers=r.get("num_workers", 4))


# One folder per model: results/<dataset>/<arch>/<run>/<method>/sparsity-<s>/, where <run> is
# seed-<replicate> for a target model and ref-<k> for reference model k, and <method> a
# pruning method (pruning.methods) or `dense`: the dense network is dense/sparsity-0 (it also
# holds w0 and the rewind state). A model's confidences and attacks live in its folder.
# The mask and retrained network of a pruning step live in <method>/<point>/, where <point> is
# sparsity-<s> or, for an iterative method (imp), round-<k>; a configured sparsity s of an
# iterative method is served by the first round at or above s (its folder sparsity-<s> holds
# the confidences and attacks of that round's network). Targets and references go through
# the same rules; only their seed and membership table differ.
MODEL_DIR = f"{R}/{{dataset}}/{{arch}}/{{run}}/{{method}}/sparsity-{{sparsity}}"
DENSE_DIR = f"{R}/{{dataset}}/{{arch}}/{{run}}/dense/sparsity-0"
STEP_DIR = f"{R}/{{dataset}}/{{arch}}/{{run}}/{{method}}/{{point}}"
TICKET_METHODS = "|".join(sorted(METHODS))


def run_name(replicate):
    return str(replicate) if str(replicate).startswith("ref-") else f"seed-{replicate}"


def model_dir(dataset, arch, replicate, method, sparsity):
    """The folder of a target model (replicate seed) or, with replicate "ref-<k>", of a
    reference model."""
    return f"{R}/{dataset}/{arch}/{run_name(replicate)}/{method}/sparsity-{sparsity}"


def dense_dir(w):
    return f"{R}/{w.dataset}/{w.arch}/{w.run}/dense/sparsity-0"


def step_dir(w, method, point):
    return f"{R}/{w.dataset}/{w.arch}/{w.run}/{method}/{point}"


def imp_round_of(method, sparsity):
    """The round of iterative ``method`` that serves configured ``sparsity``."""
    return method_of(method).rounds_for(float(sparsity))


def trained_point(method, sparsity):
    """The <point> folder of the network behind model (method, sparsity): sparsity-<s>, or
    the IMP round that serves s."""
    if method != "dense" and METHODS[method].iterative:
        return f"round-{imp_round_of(method, sparsity)}"
    return f"sparsity-{sparsity}"


def trained_dir(w):
    """The folder of the network behind a model folder (model.pt, metrics.json, mask.pt)."""
    return step_dir(w, w.method, trained_point(w.method, w.sparsity))


def point_of(w):
    """(sparsity, round) of a pruning step's <point>: (s, None) or (None, k)."""
    kind, value = w.point.split("-", 1)
    if kind == "round":
        if not METHODS[w.method].iterative:
            raise WorkflowError(f"{w.method} is not iterative: it has no {w.point}")
        return None, int(value)
    if METHODS[w.method].iterative:
        raise WorkflowError(f"{w.method} is iterative: its networks live in round-<k> folders")
    return float(value), None


def mask_inputs(w):
    """What a method's pruning step reads: the network it scores, the mask it starts from,
    and (for data-driven methods) the membership table."""
    m = METHODS[w.method]
    sparsity, k = point_of(w)
    dense = dense_dir(w)
    if k is not None and k > 1:  # an iterative method's later round: the previous round
        prev = step_dir(w, w.method, f"round-{k - 1}")
        out = {"score_model": f"{prev}/model.pt", "base_mask": f"{prev}/mask.pt"}
    else:
        state = {"trained": "model.pt", "init": "init.pt", "rewind": "rewind.pt"}[m.score_state]
        out = {"score_model": f"{dense}/{state}"}
        if m.base_mask:
            out["base_mask"] = f"{step_dir(w, m.base_mask, w.point)}/mask.pt"
    if m.needs_data:
        out["membership"] = run_membership(w)
    return out


def start_state(w):
    """The dense-run state a pruned network retrains from (reinit reads w0's architecture)."""
    return f"{dense_dir(w)}/{'rewind.pt' if METHODS[w.method].start == 'rewind' else 'init.pt'}"


def step_sparsity(w):
    """The sparsity a pruning step aims at: the configured one, or a round's nominal one."""
    sparsity, k = point_of(w)
    return sparsity if k is None else method_of(w.method).round_sparsity(k)


def run_params(w):
    """What a training job of a model reads from the config: data, recipe, seed."""
    return {
        "data": data_params(w.dataset),
        "recipe": recipe(w.dataset, w.arch),
        "recipe_key": f"training.{w.dataset}.{w.arch}",
        "seed": run_seed(w.run),
    }


def ticket_params(w):
    """A pruned network's training job: run_params plus its method, start state and step."""
    sparsity, k = point_of(w)
    return {
        **run_params(w),
        "method": w.method,
        "start": METHODS[w.method].start,
        "sparsity": step_sparsity(w),
        "imp_round": k,
    }


def prune_params(w):
    """A pruning step: the method, its settings, the target, the seed (and, for methods that
    score minibatches, the data and recipe)."""
    sparsity, k = point_of(w)
    data = METHODS[w.method].needs_data
    return canonical({
        "method": w.method,
        "settings": PRUNE.get(w.method) or {},
        "sparsity": sparsity,
        "imp_round": k,
        "seed": run_seed(w.run),
        "data": data_params(w.dataset) if data else None,
        "recipe": recipe(w.dataset, w.arch) if data else None,
        "recipe_key": f"training.{w.dataset}.{w.arch}",
    })


def trained_identity(w):
    """The network behind a model folder as its training job records it (the scoring job
    refuses any other checkpoint found there)."""
    if w.method == "dense":
        sparsity, k = 0.0, None
    elif METHODS[w.method].iterative:
        k = imp_round_of(w.method, w.sparsity)
        sparsity = method_of(w.method).round_sparsity(k)
    else:
        sparsity, k = float(w.sparsity), None
    return {"dataset": w.dataset, "arch": w.arch, "seed": run_seed(w.run),
            "method": w.method, "sparsity": sparsity, "imp_round": k}


def score_params(w):
    """A scoring job: the data, the model's method and sparsity, its seed, and the network
    it must find in its folder."""
    return {
        "data": data_params(w.dataset),
        "method": w.method,
        "sparsity": float(w.sparsity),
        "replicate": run_seed(w.run),
        "expected": trained_identity(w),
    }


def attack_params(w):
    """A fit-attack job: the attacks it runs on this model, their settings, its seed."""
    names = attacks_of(w)
    refs = in_reference_grid(w.dataset, w.arch, w.method, w.sparsity)
    return canonical({
        "attacks": names,
        "settings": {name: ATTACK.get(name) or {} for name in names},
        "replicate": run_seed(w.run),
        # the model whose confidence table the job must find (and its references')
        "expected": {"dataset": w.dataset, "arch": w.arch, "method": w.method,
                     "sparsity": float(w.sparsity), "replicate": run_seed(w.run)},
        "reference_seeds": [run_seed(f"ref-{k}") for k in range(REF_COUNT)] if refs else [],
    })


def scored_model(w):
    """A scoring job's inputs: the membership table and the trained network behind it."""
    out = {
        "membership": run_membership(w),
        "model": f"{trained_dir(w)}/model.pt",
        "metrics": f"{trained_dir(w)}/metrics.json",
    }
    if w.method != "dense":
        out["mask"] = f"{trained_dir(w)}/mask.pt"
    return out


def ticket_inputs(w):
    """A pruned network's training inputs besides its mask."""
    return {"membership": run_membership(w), "start": start_state(w)}


def run_seed(run):
    """Training seed of a run: a target's replicate seed, or references.seed + k."""
    kind, num = run.split("-")
    return int(num) if kind == "seed" else REF_SEED + int(num)


def run_membership(w):
    """The membership table a run trains and is scored on."""
    if w.run.startswith("ref-"):
        return f"{R}/{w.dataset}/references/{w.run}/membership.parquet"
    return f"{R}/{w.dataset}/membership.parquet"


def in_reference_grid(dataset, arch, method, sparsity):
    return (
        REF_COUNT > 0
        and (method == "dense" or method in REF_METHODS)
        and dataset in (REF.get("datasets") or list(config["datasets"]))
        and arch in REF.get("architectures", [])
        and any(fmt_sparsity(s) == sparsity for s in REF.get("sparsities", []))
    )


def reference_inputs(w):
    """Reference models' confidences and the inclusion table, for attacks that need them."""
    if not in_reference_grid(w.dataset, w.arch, w.method, w.sparsity):
        return {}
    return {
        "references": [
            f"{model_dir(w.dataset, w.arch, f'ref-{k}', w.method, w.sparsity)}/confidences.parquet"
            for k in range(REF_COUNT)
        ],
        "inclusion": f"{R}/{w.dataset}/references/inclusion.parquet",
    }


def attacks_of(w):
    if in_reference_grid(w.dataset, w.arch, w.method, w.sparsity):
        return ATTACKS + REF_ATTACKS
    return ATTACKS


def models_at(sparsity):
    """The (method, sparsity-string) models of a grid sparsity: the dense network at 0, every
    configured pruning method above it."""
    s = fmt_sparsity(sparsity)
    return [("dense", s)] if float(s) == 0 else [(m, s) for m in METHOD_NAMES]


def grid_models(dataset=None):
    """(dataset, arch, replicate, method, sparsity-string) of every model in the grid."""
    for ds, g in GRIDS.items():
        if dataset is None or ds == dataset:
            for arch in g.architectures:
                for r in REPLICATES:
                    for s in g.sparsities:
                        for method, sp in models_at(s):
                            yield ds, arch, r, method, sp


def trained_metrics(dataset, arch, replicate, method, sparsity):
    """metrics.json of the network behind a model (an IMP round serves its sparsities)."""
    point = trained_point(method, sparsity)
    return f"{R}/{dataset}/{arch}/{run_name(replicate)}/{method}/{point}/metrics.json"


TRAINING_MODELS = [
    {"dataset": d, "arch": a, "replicate": r, "method": m, "sparsity": float(s),
     "kind": "dense" if m == "dense" else METHODS[m].kind,
     "metrics": trained_metrics(d, a, r, m, s)}
    for d, a, r, m, s in grid_models()
]


def all_training_metrics():
    return [t["metrics"] for t in TRAINING_MODELS]


def all_attack_results(name):
    return [
        f"{model_dir(d, a, r, m, s)}/attack-n{n}/{name}"
        for d, a, r, m, s in grid_models()
        for n in GRIDS[d].sample_sizes
    ]


# Datasets grouped by their list of attack sample sizes (one fit-attack rule per group).
SIZE_GROUPS = []
for _ds, _g in GRIDS.items():
    for _sizes, _members in SIZE_GROUPS:
        if _sizes == tuple(_g.sample_sizes):
            _members.append(_ds)
            break
    else:
        SIZE_GROUPS.append((tuple(_g.sample_sizes), [_ds]))


TRANSFER = config["transfer"]
TRANSFER_REPLICATE = REPLICATES[0]
TRANSFER_MODELS = [
    (a, m, s)
    for a in TRANSFER["architectures"]
    for m, s in [("dense" if float(x) == 0 else TRANSFER.get("method", "oneshot"),
                  fmt_sparsity(x)) for x in TRANSFER["sparsities"]]
]


def score_groups(sample_sizes_of_dataset, models=None):
    """Replicate score files per model and sample size: Table 1's two models (dense, the
    report.table1_method ticket) unless ``models`` lists (method, sparsity-string) pairs."""
    groups = []
    for d, g in GRIDS.items():
        pairs = models or [("dense", "0"), (T1_METHOD, T1_SPARSITY)]
        for n in sample_sizes_of_dataset(d, g):
            for method, s in pairs:
                groups.append(
                    {
                        "dataset": d,
                        "arch": T1_ARCH,
                        "method": method,
                        "sparsity": float(s),
                        "sample_size": int(n),
                        "paths": [
                            f"{model_dir(d, T1_ARCH, r, method, s)}/attack-n{n}/scores.parquet"
                            for r in REPLICATES
                        ],
                    }
                )
    return groups


def figure2_size(g):
    """Figure 2's sample size for a dataset's grid, or its largest if it lacks that one."""
    return FIG2_N if FIG2_N in g.sample_sizes else max(g.sample_sizes)


def group_paths(groups):
    return [p for g in groups for p in g["paths"]]
