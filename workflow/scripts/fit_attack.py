import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.jobs import logged
from lottery_mia.jobs.attack import run_attacks_per_sample

t, out = snakemake.params.target, snakemake.output
inp = dict(snakemake.input.items())
with logged(snakemake.log[0], snakemake.rule):
    run_attacks_per_sample(
        confidences_path=inp["confidences"], sample_paths=list(inp["samples"]),
        sample_sizes=list(t["sample_sizes"]), attacks=list(t["attacks"]),
        settings=dict(t["settings"]), features=t["features"], seed=t["seed"],
        n_bootstrap=t["n_bootstrap"], replicate=t["replicate"],
        out_metrics=list(out.metrics), out_scores=list(out.scores),
        reference_paths=list(inp.get("references") or []),
        inclusion_path=inp.get("inclusion"), expected=dict(t["expected"]),
        reference_seeds=list(t["reference_seeds"]), parent_path=inp.get("parent"),
        reference_parent_paths=list(inp.get("reference_parents") or []),
        input_features=inp.get("input_features"),
    )
