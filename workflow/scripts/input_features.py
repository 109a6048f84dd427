import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.jobs import logged
from lottery_mia.jobs.split import build_input_features

p = snakemake.params
with logged(snakemake.log[0], snakemake.rule):
    build_input_features(membership_path=snakemake.input.membership,
                         source=p.data["source"], root=p.data["root"],
                         key=f"datasets.{p.data['dataset']}.root", size=p.size,
                         output=snakemake.output[0])
