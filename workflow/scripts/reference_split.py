import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.references import build_references
from lottery_mia.workflow import logged

out = snakemake.output
with logged(snakemake.log[0], snakemake.rule):
    build_references(
        membership_path=snakemake.input.membership, count=snakemake.params.references,
        seed=snakemake.params.seed, out_inclusion=out.inclusion,
        out_memberships=list(out.memberships),
    )
