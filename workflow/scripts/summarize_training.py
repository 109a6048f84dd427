import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.jobs import logged
from lottery_mia.jobs.summarize import summarize_training

with logged(snakemake.log[0], snakemake.rule):
    summarize_training(
        list(snakemake.input.metrics),
        dict(zip(snakemake.params.datasets, snakemake.input.membership)), snakemake.output[0],
        models=list(snakemake.params.models),
    )
