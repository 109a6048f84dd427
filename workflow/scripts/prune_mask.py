import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.jobs import dataspec, logged
from lottery_mia.jobs.prune import prune_mask

p, inp, out = snakemake.params, snakemake.input, snakemake.output
s = p.step
with logged(snakemake.log[0], snakemake.rule):
    prune_mask(
        method=s["method"], settings=s["settings"], score_model=inp.score_model,
        base_mask=inp.get("base_mask"), sparsity=s["sparsity"], imp_round=s["imp_round"],
        seed=s["seed"], prune_fc=s["prune_fc"], out_mask=out.mask, out_report=out.report,
        data=dataspec(s["data"], inp.membership) if s["data"] else None,
        recipe=s["recipe"], num_workers=p.how.num_workers, recipe_key=s["recipe_key"],
        threads=snakemake.threads,
    )
