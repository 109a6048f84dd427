import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.jobs import logged
from lottery_mia.jobs.summarize import summarize_transfer

p = snakemake.params
with logged(snakemake.log[0], snakemake.rule):
    summarize_transfer(list(snakemake.input), p.dataset, p.replicate, snakemake.output[0],
                       sources=list(p.sources))
