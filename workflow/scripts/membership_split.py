import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.jobs import logged
from lottery_mia.jobs.split import build_membership_split

p = snakemake.params
with logged(snakemake.log[0], snakemake.rule):
    build_membership_split(
        p.data["source"], p.data["root"], key=f"datasets.{p.data['dataset']}.root",
        download=p.how.download, members=p.split["members"],
        nonmembers=p.split["nonmembers"], scored_members=p.split["scored_members"],
        seed=p.split["split_seed"], output=snakemake.output[0],
    )
