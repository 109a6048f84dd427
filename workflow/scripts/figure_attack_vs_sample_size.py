import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.figures import figure_attack_vs_sample_size_from_csv
from lottery_mia.workflow import logged

p = snakemake.params
with logged(snakemake.log[0], snakemake.rule):
    figure_attack_vs_sample_size_from_csv(snakemake.input[0], p.sparsity, snakemake.output[0],
                                          p.attack, method=p.method)
