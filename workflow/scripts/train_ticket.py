import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.training import train_ticket
from lottery_mia.workflow import dataspec, logged

p, inp, out = snakemake.params, snakemake.input, snakemake.output
s, how = p.step, p.how
with logged(snakemake.log[0], snakemake.rule):
    train_ticket(
        data=dataspec(snakemake, s["data"]), arch=snakemake.wildcards.arch,
        recipe=s["recipe"], recipe_key=s["recipe_key"], seed=s["seed"], method=s["method"],
        start=s["start"], rewind_epoch=p.rewind["rewind_epoch"],
        rewind_step=p.rewind["rewind_step"], sparsity=s["sparsity"],
        imp_round=s["imp_round"], device=how.device, mask_path=inp.mask, start_path=inp.start,
        out_model=out.model, out_metrics=out.metrics, threads=snakemake.threads,
        runtime=how.runtime, num_workers=how.num_workers,
    )
