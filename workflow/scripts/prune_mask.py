import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.pruning.jobs import prune_mask
from lottery_mia.workflow import dataspec, logged

p, inp, out = snakemake.params, snakemake.input, snakemake.output
s = p.step
with logged(snakemake.log[0], snakemake.rule):
    prune_mask(
        method=s["method"], settings=s["settings"], score_model=inp.score_model,
        base_mask=inp.get("base_mask"), sparsity=s["sparsity"], imp_round=s["imp_round"],
        seed=s["seed"], prune_fc=p.prune_fc, out_mask=out.mask, out_report=out.report,
        data=dataspec(snakemake, s["data"]) if s["data"] else None,
        recipe={**s["recipe"], "num_workers": p.how.num_workers} if s["recipe"] else None,
        recipe_key=s["recipe_key"], threads=snakemake.threads,
    )
