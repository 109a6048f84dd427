import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.figures import figure_low_fpr_vs_sparsity_from_csv
from lottery_mia.workflow import logged

p = snakemake.params
with logged(snakemake.log[0], snakemake.rule):
    figure_low_fpr_vs_sparsity_from_csv(snakemake.input[0], p.arch, p.sample_size,
                                        snakemake.output[0], which=list(p.attacks),
                                        method=p.method)
