import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.figures import figure_test_accuracy_from_csv
from lottery_mia.workflow import logged

with logged(snakemake.log[0], snakemake.rule):
    figure_test_accuracy_from_csv(snakemake.input[0], snakemake.output[0])
