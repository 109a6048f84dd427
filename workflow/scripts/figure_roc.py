import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.figures import figure_roc_from_scores
from lottery_mia.workflow import logged

p = snakemake.params
with logged(snakemake.log[0], snakemake.rule):
    figure_roc_from_scores(list(snakemake.input), p.models, snakemake.output[0], p.attack)
