from lottery_mia.summaries import summarize_transfer
from lottery_mia.workflow import logged

p = snakemake.params
with logged(snakemake.log[0], snakemake.rule):
    summarize_transfer(list(snakemake.input), p.dataset, p.replicate, snakemake.output[0])
