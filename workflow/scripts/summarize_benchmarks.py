import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.benchmarks import summarize_benchmarks
from lottery_mia.workflow import logged

with logged(snakemake.log[0], snakemake.rule):
    summarize_benchmarks(snakemake.params.directory, snakemake.output[0])
