import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.summaries import summarize_transfer
from lottery_mia.workflow import logged

p = snakemake.params
with logged(snakemake.log[0], snakemake.rule):
    summarize_transfer(list(snakemake.input), p.dataset, p.replicate, snakemake.output[0])
