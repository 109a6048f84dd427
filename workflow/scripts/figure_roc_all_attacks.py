import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.figures import figure_roc_all_attacks_from_scores
from lottery_mia.workflow import logged

with logged(snakemake.log[0], snakemake.rule):
    figure_roc_all_attacks_from_scores(
        list(snakemake.input.scores), snakemake.params.models, snakemake.input.attacks,
        snakemake.output[0],
    )
