import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.summaries import summarize_attacks
from lottery_mia.workflow import logged

p = snakemake.params
with logged(snakemake.log[0], snakemake.rule):
    summarize_attacks(list(snakemake.input.metrics), list(snakemake.input.scores),
                      snakemake.output[0], n_bootstrap=p.n_bootstrap, seed=p.seed)
