import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.report import summarize_training
from lottery_mia.workflow import logged

with logged(snakemake.log[0], snakemake.rule):
    summarize_training(list(snakemake.input), snakemake.output[0])
