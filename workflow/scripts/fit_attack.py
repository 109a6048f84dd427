import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.attacks import fit_attack
from lottery_mia.workflow import logged

p, out = snakemake.params, snakemake.output
with logged(snakemake.log[0], snakemake.rule):
    fit_attack(
        confidences_path=snakemake.input.confidences, sample_path=snakemake.input.sample,
        mlp=p.mlp, features=p.features, seed=p.seed, out_model=out.model,
        out_metrics=out.metrics, out_scores=out.scores,
    )
