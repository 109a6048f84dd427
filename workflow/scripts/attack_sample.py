import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.jobs import logged
from lottery_mia.jobs.split import build_attack_sample

p = snakemake.params
with logged(snakemake.log[0], snakemake.rule):
    build_attack_sample(
        membership_path=snakemake.input.membership, n=p.n, seed=p.seed,
        test_fraction=p.test_fraction, output=snakemake.output[0],
    )
