import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.attacks import run_attacks_per_sample
from lottery_mia.workflow import logged

p, out = snakemake.params, snakemake.output
inp = dict(snakemake.input.items())
with logged(snakemake.log[0], snakemake.rule):
    run_attacks_per_sample(
        confidences_path=inp["confidences"], sample_paths=list(inp["samples"]),
        sample_sizes=list(p.sample_sizes), attacks=list(p.target["attacks"]),
        settings=dict(p.target["settings"]), features=p.features, seed=p.seed,
        n_bootstrap=p.n_bootstrap, replicate=p.target["replicate"],
        out_metrics=list(out.metrics),
        out_scores=list(out.scores), reference_paths=list(inp.get("references") or []),
        inclusion_path=inp.get("inclusion"), expected=dict(p.target["expected"]),
        reference_seeds=list(p.target["reference_seeds"]),
    )
