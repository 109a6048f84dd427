# The typed config, the plan of the grid and the layout of the results; every rule asks
# them. No torch here: cluster jobs re-read the Snakefile.
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import min_version

min_version("9.0")

# The workflow runs the lottery_mia package of its own checkout, so code and workflow match:
# here for the Snakefile, and in every job through workflow/scripts/_checkout.py (no
# environment export, so `snakemake --lint` stays clean).
SRC = str(Path(workflow.basedir) / "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)

from lottery_mia import layout as L
from lottery_mia.cluster import placeholder_resources
from lottery_mia.config import ConfigError, load_config
from lottery_mia.devices import device_without_gpu
from lottery_mia.figures import FIGURES
from lottery_mia.jobs import warm
from lottery_mia.layout import ModelKey, StepKey
from lottery_mia.networks import ARCHITECTURES
from lottery_mia.plan import Plan
from lottery_mia.pruning import METHODS

try:
    CFG = load_config(config, cache_dir=Path(".snakemake") / "lottery-mia")
except ConfigError as err:
    raise WorkflowError(f"invalid config: {err}") from None
for _warning in CFG.warnings():
    logger.warning(f"warning: {_warning}")
# device: cuda without a GPU: a warning here (a dry run, or a cluster's login node), an
# error in onstart (Snakefile) before any job of a local run
NO_GPU = device_without_gpu(CFG.device)
if NO_GPU:
    logger.warning(f"warning: {NO_GPU}")
_placeholders = placeholder_resources(
    workflow.resource_settings.default_resources,
    workflow.resource_settings.overwrite_resources,
)
if _placeholders:
    raise WorkflowError(
        "the cluster profile still has placeholder values (see README, Running on SLURM):\n  "
        + "\n  ".join(_placeholders)
    )
try:
    PLAN = Plan(CFG)
except ConfigError as err:
    raise WorkflowError(f"invalid config: {err}") from None
GPU = 1 if CFG.device.startswith("cuda") else 0


wildcard_constraints:
    dataset="|".join(sorted(CFG.datasets)),
    arch="|".join(sorted(ARCHITECTURES)),
    sparsity=L.WILDCARD_CONSTRAINTS["sparsity"],
    run=L.WILDCARD_CONSTRAINTS["run"],
    method="|".join([L.DENSE] + sorted(METHODS)),
    point=L.WILDCARD_CONSTRAINTS["point"],
    n=L.WILDCARD_CONSTRAINTS["n"],


def model(w):
    """The scored model of a job's wildcards."""
    return ModelKey.from_wildcards(w)


def step(w):
    """The trained network of a job's wildcards."""
    return StepKey.from_wildcards(w)


def train_gpus(w):
    """GPUs of a training job: the recipe's `gpus` (one node, DistributedDataParallel) when
    the device is CUDA, else none. Each holds a slot on its own device (runtime.gpu_slots).
    """
    return GPU * PLAN.how(step(w)).gpus


def train_minutes(wc, attempt):
    """SLURM time limit of a training job: runtime.train_minutes, x2 and x3 on retries."""
    return CFG.runtime.train_minutes * attempt


# The warm worker of a local run (started in the Snakefile's onstart, stopped at its end).
WARM = []


def stop_warm_worker():
    while WARM:
        server = WARM.pop()
        if server is not None:
            server.stop()
