import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.attacks import run_attacks
from lottery_mia.workflow import logged

p, out = snakemake.params, snakemake.output
inp = dict(snakemake.input.items())
with logged(snakemake.log[0], snakemake.rule):
    run_attacks(
        confidences_path=inp["confidences"], sample_path=inp["sample"],
        attacks=list(p.attacks), settings=dict(p.settings), features=p.features, seed=p.seed,
        n_bootstrap=p.n_bootstrap, replicate=p.replicate, out_metrics=out.metrics,
        out_scores=out.scores, reference_paths=list(inp.get("references") or []),
        inclusion_path=inp.get("inclusion"),
    )
