import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.pruning.jobs import prune_mask
from lottery_mia.workflow import dataspec, logged

p, inp, out = snakemake.params, snakemake.input, snakemake.output
with logged(snakemake.log[0], snakemake.rule):
    prune_mask(
        method=p.method, settings=p.settings, score_model=inp.score_model,
        base_mask=inp.get("base_mask"), sparsity=p.sparsity, imp_round=p.imp_round,
        seed=p.seed, prune_fc=p.prune_fc, out_mask=out.mask, out_report=out.report,
        data=dataspec(snakemake) if p.data else None, recipe=p.recipe,
        recipe_key=p.recipe_key, threads=snakemake.threads,
    )
