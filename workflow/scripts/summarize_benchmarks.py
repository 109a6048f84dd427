import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.jobs import logged
from lottery_mia.jobs.summarize import summarize_benchmarks

with logged(snakemake.log[0], snakemake.rule):
    summarize_benchmarks(snakemake.params.directory, snakemake.output[0],
                         logs=snakemake.params.logs)
