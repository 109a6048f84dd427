import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.attacks import transfer_attack
from lottery_mia.workflow import logged

p = snakemake.params
with logged(snakemake.log[0], snakemake.rule):
    transfer_attack(
        source_confidences=snakemake.input.source, sample_path=snakemake.input.sample,
        attack=p.attack, settings=dict(p.settings), features=p.features, seed=p.seed,
        n_bootstrap=p.n_bootstrap, targets=list(p.targets),
        target_paths=list(snakemake.input.targets), output=snakemake.output[0],
    )
