import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.report import summarize_attacks
from lottery_mia.workflow import logged

with logged(snakemake.log[0], snakemake.rule):
    summarize_attacks(list(snakemake.input), snakemake.output[0])
