import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.figures import figure_gap_from_csv
from lottery_mia.workflow import logged

p, out = snakemake.params, snakemake.output
with logged(snakemake.log[0], snakemake.rule):
    figure_gap_from_csv(
        snakemake.input.training, snakemake.input.attacks, p.sample_size, out.figure,
        out.correlation, attack=p.attack,
    )
