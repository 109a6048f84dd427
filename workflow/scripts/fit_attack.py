from lottery_mia.attacks import run_attacks
from lottery_mia.workflow import logged

p, out = snakemake.params, snakemake.output
with logged(snakemake.log[0], snakemake.rule):
    run_attacks(
        confidences_path=snakemake.input.confidences, sample_path=snakemake.input.sample,
        attacks=list(p.attacks), settings=dict(p.settings), features=p.features, seed=p.seed,
        n_bootstrap=p.n_bootstrap, replicate=p.replicate, out_metrics=out.metrics,
        out_scores=out.scores,
    )
