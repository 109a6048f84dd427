import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.attacks import transfer_attack
from lottery_mia.workflow import logged

with logged(snakemake.log[0], snakemake.rule):
    transfer_attack(
        attack_model_path=snakemake.input.attack, sample_path=snakemake.input.sample,
        targets=snakemake.params.targets, target_paths=list(snakemake.input.targets),
        output=snakemake.output[0],
    )
