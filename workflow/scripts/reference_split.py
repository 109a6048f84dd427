import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.jobs import logged
from lottery_mia.jobs.split import build_references

out = snakemake.output
with logged(snakemake.log[0], snakemake.rule):
    build_references(
        membership_path=snakemake.input.membership, count=snakemake.params.references,
        seed=snakemake.params.seed, out_inclusion=out.inclusion,
        out_memberships=list(out.memberships),
    )
