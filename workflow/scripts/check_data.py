import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.jobs import logged
from lottery_mia.jobs.split import check_data

inp, p = snakemake.input, snakemake.params
with logged(snakemake.log[0], snakemake.rule):
    check_data(membership_path=inp.membership, source=p.source,
               sample_paths=list(inp.samples), sample_sizes=list(p.sample_sizes),
               inclusion_path=inp.get("inclusion"), output=snakemake.output[0],
               root=p.data["root"], key=f"datasets.{p.data['dataset']}.root")
