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


wildcard_constraints:
    dataset="|".join(sorted(config["datasets"])),
    arch="resnet18|resnet50",
    sparsity=r"0|0\.[0-9]+",
    n=r"[0-9]+",


def data_params(dataset):
    ds = config["datasets"][dataset]
    return {"dataset": dataset, "source": ds["source"], "root": ds.get("root")}


def recipe(dataset, arch):
    return config["training"][dataset][arch]


def model_dir(w):
    return f"{R}/{w.dataset}/{w.arch}/sparsity-{w.sparsity}"


def trained_model(w):
    """The network of a (dataset, arch, sparsity): the dense one at sparsity 0."""
    if float(w.sparsity) == 0.0:
        return f"{R}/{w.dataset}/{w.arch}/dense/model.pt"
    return f"{R}/{w.dataset}/{w.arch}/sparsity-{w.sparsity}/model.pt"


def training_metrics(w):
    if float(w.sparsity) == 0.0:
        return f"{R}/{w.dataset}/{w.arch}/dense/metrics.json"
    return f"{R}/{w.dataset}/{w.arch}/sparsity-{w.sparsity}/metrics.json"


def grid_models(dataset=None):
    """(dataset, arch, sparsity-string) of every model in the config's grid."""
    for ds, g in GRIDS.items():
        if dataset is None or ds == dataset:
            for arch in g.architectures:
                for s in g.sparsities:
                    yield ds, arch, fmt_sparsity(s)


def all_training_metrics():
    return [
        training_metrics(type("W", (), {"dataset": d, "arch": a, "sparsity": s}))
        for d, a, s in grid_models()
    ]


def all_attack_metrics():
    return [
        f"{R}/{d}/{a}/sparsity-{s}/attack-n{n}/metrics.json"
        for d, a, s in grid_models()
        for n in GRIDS[d].sample_sizes
    ]


TRANSFER = config["transfer"]
TRANSFER_MODELS = [
    (a, fmt_sparsity(s))
    for a in TRANSFER["architectures"]
    for s in TRANSFER["sparsities"]
]
