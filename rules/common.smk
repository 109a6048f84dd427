# Config validation, wildcard constraints and input helpers. No torch here: cluster jobs
# re-read the Snakefile.
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

from lottery_mia.config import ConfigError, check_config, fmt_sparsity, sample_sizes_of
from lottery_mia.config import root_warnings, schema_problem

_problem = schema_problem(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")
if _problem:  # one line naming the key, not the whole schema
    raise WorkflowError(f"invalid config: {_problem}")
validate(config, schema="../workflow/schemas/config.schema.yaml")  # sets the defaults
try:
    GRIDS = check_config(config)
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


wildcard_constraints:
    dataset="|".join(sorted(config["datasets"])),
    arch="resnet18|resnet50",
    sparsity=r"0|0\.[0-9]+",
    run=r"seed-[0-9]+|ref-[0-9]+",
    n=r"[0-9]+",


def data_params(dataset):
    ds = config["datasets"][dataset]
    return {"dataset": dataset, "source": ds["source"], "root": ds.get("root")}


def recipe(dataset, arch):
    return config["training"][dataset][arch]


# One folder per model: results/<dataset>/<arch>/<run>/sparsity-<s>/, where <run> is
# seed-<replicate> for a target model and ref-<k> for reference model k; the dense network is
# sparsity-0 (it also holds w0 and the rewind state). Targets and references go through the
# same rules; only their seed and membership table differ.
MODEL_DIR = f"{R}/{{dataset}}/{{arch}}/{{run}}/sparsity-{{sparsity}}"
DENSE_DIR = f"{R}/{{dataset}}/{{arch}}/{{run}}/sparsity-0"


def model_dir(dataset, arch, replicate, sparsity):
    """The folder of a target model (replicate seed) or, with replicate "ref-<k>", of a
    reference model."""
    run = replicate if str(replicate).startswith("ref-") else f"seed-{replicate}"
    return f"{R}/{dataset}/{arch}/{run}/sparsity-{sparsity}"


def run_seed(run):
    """Training seed of a run: a target's replicate seed, or references.seed + k."""
    kind, num = run.split("-")
    return int(num) if kind == "seed" else REF_SEED + int(num)


def run_membership(w):
    """The membership table a run trains and is scored on."""
    if w.run.startswith("ref-"):
        return f"{R}/{w.dataset}/references/{w.run}/membership.parquet"
    return f"{R}/{w.dataset}/membership.parquet"


def in_reference_grid(dataset, arch, sparsity):
    return (
        REF_COUNT > 0
        and dataset in (REF.get("datasets") or list(config["datasets"]))
        and arch in REF.get("architectures", [])
        and any(fmt_sparsity(s) == sparsity for s in REF.get("sparsities", []))
    )


def reference_inputs(w):
    """Reference models' confidences and the inclusion table, for attacks that need them."""
    if not in_reference_grid(w.dataset, w.arch, w.sparsity):
        return {}
    return {
        "references": [
            f"{model_dir(w.dataset, w.arch, f'ref-{k}', w.sparsity)}/confidences.parquet"
            for k in range(REF_COUNT)
        ],
        "inclusion": f"{R}/{w.dataset}/references/inclusion.parquet",
    }


def attacks_of(w):
    if in_reference_grid(w.dataset, w.arch, w.sparsity):
        return ATTACKS + REF_ATTACKS
    return ATTACKS


def grid_models(dataset=None):
    """(dataset, arch, replicate, sparsity-string) of every model in the config's grid."""
    for ds, g in GRIDS.items():
        if dataset is None or ds == dataset:
            for arch in g.architectures:
                for r in REPLICATES:
                    for s in g.sparsities:
                        yield ds, arch, r, fmt_sparsity(s)


def all_training_metrics():
    return [f"{model_dir(d, a, r, s)}/metrics.json" for d, a, r, s in grid_models()]


def all_attack_results(name):
    return [
        f"{model_dir(d, a, r, s)}/attack-n{n}/{name}"
        for d, a, r, s in grid_models()
        for n in GRIDS[d].sample_sizes
    ]


TRANSFER = config["transfer"]
TRANSFER_REPLICATE = REPLICATES[0]
TRANSFER_MODELS = [
    (a, fmt_sparsity(s))
    for a in TRANSFER["architectures"]
    for s in TRANSFER["sparsities"]
]


def score_groups(sample_sizes_of_dataset):
    """Table 1's two models (dense, ticket): their replicate score files per sample size."""
    groups = []
    for d, g in GRIDS.items():
        for n in sample_sizes_of_dataset(d, g):
            for s in ("0", T1_SPARSITY):
                groups.append(
                    {
                        "dataset": d,
                        "arch": T1_ARCH,
                        "sparsity": float(s),
                        "sample_size": int(n),
                        "paths": [
                            f"{model_dir(d, T1_ARCH, r, s)}/attack-n{n}/scores.parquet"
                            for r in REPLICATES
                        ],
                    }
                )
    return groups


def group_paths(groups):
    return [p for g in groups for p in g["paths"]]
