import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.jobs import logged
from lottery_mia.jobs.tables import write_slices

p = snakemake.params
with logged(snakemake.log[0], snakemake.rule):
    write_slices(
        attacks_csv=snakemake.input.attacks, score_paths=list(p.groups),
        slice_attacks=list(p.attacks), n_bootstrap=p.n_bootstrap, seed=p.seed,
        output=snakemake.output[0],
    )
