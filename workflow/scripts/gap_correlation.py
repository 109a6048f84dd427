import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.jobs import logged
from lottery_mia.jobs.summarize import write_gap_correlation

p = snakemake.params
with logged(snakemake.log[0], snakemake.rule):
    write_gap_correlation(training_csv=snakemake.input.training,
                          attacks_csv=snakemake.input.attacks, sample_size=p.sample_size,
                          attack=p.attack, output=snakemake.output[0])
