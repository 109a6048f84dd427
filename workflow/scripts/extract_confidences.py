import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.scoring import extract_confidences
from lottery_mia.workflow import dataspec, logged

p, how = snakemake.params, snakemake.params.how
with logged(snakemake.log[0], snakemake.rule):
    m = p.model
    extract_confidences(
        data=dataspec(snakemake, m["data"]), model_path=snakemake.input.model,
        dataset=snakemake.wildcards.dataset, arch=snakemake.wildcards.arch,
        sparsity=m["sparsity"], replicate=m["replicate"], device=how.device,
        batch_size=p.batch_size, num_workers=how.num_workers, output=snakemake.output[0],
        threads=snakemake.threads, augmentations=p.get("augmentations", 1),
        method=m["method"], metrics_path=snakemake.input.metrics,
        gpu_slots=how.runtime["gpu_slots"], expected=m["expected"],
        mask_path=snakemake.input.get("mask"),
    )
