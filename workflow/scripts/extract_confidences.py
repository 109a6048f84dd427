import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.confidences import extract_confidences
from lottery_mia.workflow import dataspec, logged

p = snakemake.params
with logged(snakemake.log[0], snakemake.rule):
    extract_confidences(
        data=dataspec(snakemake), model_path=snakemake.input.model,
        dataset=snakemake.wildcards.dataset, arch=snakemake.wildcards.arch,
        sparsity=p.sparsity, device=p.device, batch_size=p.batch_size,
        num_workers=p.num_workers, output=snakemake.output[0], threads=snakemake.threads,
    )
