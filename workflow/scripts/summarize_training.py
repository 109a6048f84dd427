import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.summaries import summarize_training
from lottery_mia.workflow import logged

with logged(snakemake.log[0], snakemake.rule):
    summarize_training(
        list(snakemake.input.metrics),
        dict(zip(snakemake.params.datasets, snakemake.input.membership)), snakemake.output[0],
        models=snakemake.params.models,
    )
