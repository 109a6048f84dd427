import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.jobs import dataspec, logged
from lottery_mia.jobs.score import extract_confidences

p, how, inp = snakemake.params, snakemake.params.how, snakemake.input
m = p.model
with logged(snakemake.log[0], snakemake.rule):
    extract_confidences(
        data=dataspec(m["data"], inp.membership), model_path=inp.model,
        dataset=snakemake.wildcards.dataset, arch=snakemake.wildcards.arch,
        sparsity=m["sparsity"], replicate=m["replicate"], device=how.device,
        batch_size=m["batch_size"], num_workers=how.num_workers, output=snakemake.output[0],
        threads=snakemake.threads, augmentations=m["augmentations"], method=m["method"],
        metrics_path=inp.metrics, gpu_slots=how.runtime["gpu_slots"],
        expected=m["expected"], mask_path=inp.get("mask"), runtime=how.runtime,
        logits_dtype=m.get("logits_dtype", "float32"), sensitivity=m.get("sensitivity"),
    )
