import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.jobs import logged
from lottery_mia.jobs.attack import transfer_attack

t = snakemake.params.transfer
with logged(snakemake.log[0], snakemake.rule):
    transfer_attack(
        source_confidences=snakemake.input.source, sample_path=snakemake.input.sample,
        attack=t["attack"], settings=dict(t["settings"]), features=t["features"],
        seed=t["seed"], n_bootstrap=t["n_bootstrap"], targets=list(t["targets"]),
        target_paths=list(snakemake.input.targets), output=snakemake.output[0],
    )
