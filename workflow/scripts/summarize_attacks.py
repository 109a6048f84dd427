import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.jobs import logged
from lottery_mia.jobs.summarize import summarize_attacks

p = snakemake.params
with logged(snakemake.log[0], snakemake.rule):
    summarize_attacks(list(snakemake.input.metrics), list(snakemake.input.scores),
                      snakemake.output[0], n_bootstrap=p.n_bootstrap, seed=p.seed,
                      models=list(p.models))
