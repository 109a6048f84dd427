from lottery_mia.attacks import transfer_attack
from lottery_mia.workflow import logged

targets = [dict(t, confidences=path)
           for t, path in zip(snakemake.params.targets, snakemake.input.targets)]
with logged(snakemake.log[0], snakemake.rule):
    transfer_attack(
        attack_model_path=snakemake.input.attack, sample_path=snakemake.input.sample,
        targets=targets, output=snakemake.output[0],
    )
