import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
import os

from lottery_mia.scoring import extract_confidences
from lottery_mia.workflow import dataspec, logged

p = snakemake.params
# jobs per GPU (config key runtime.gpu_slots), read by lottery_mia.devices.claim_device
if (p.get("runtime") or {}).get("gpu_slots"):
    os.environ["LOTTERY_MIA_GPU_SLOTS"] = str(p.runtime["gpu_slots"])
with logged(snakemake.log[0], snakemake.rule):
    m = p.model
    extract_confidences(
        data=dataspec(snakemake, m["data"]), model_path=snakemake.input.model,
        dataset=snakemake.wildcards.dataset, arch=snakemake.wildcards.arch,
        sparsity=m["sparsity"], replicate=m["replicate"], device=p.device,
        batch_size=p.batch_size, num_workers=m["num_workers"], output=snakemake.output[0],
        threads=snakemake.threads, augmentations=p.get("augmentations", 1),
        method=m["method"], metrics_path=snakemake.input.metrics,
    )
