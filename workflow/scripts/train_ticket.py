import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.jobs import dataspec, logged
from lottery_mia.jobs.train import train_ticket

p, inp, out = snakemake.params, snakemake.input, snakemake.output
s, how = p.step, p.how
with logged(snakemake.log[0], snakemake.rule):
    train_ticket(
        data=dataspec(s["data"], inp.membership), arch=snakemake.wildcards.arch,
        recipe=s["recipe"], recipe_key=s["recipe_key"], seed=s["seed"], method=s["method"],
        start=s["start"], rewind_epoch=s["rewind_epoch"], rewind_step=s["rewind_step"],
        sparsity=s["sparsity"], imp_round=s["imp_round"], device=how.device,
        mask_path=inp.mask, start_path=inp.start, out_model=out.model,
        out_metrics=out.metrics, threads=snakemake.threads, runtime=how.runtime,
        num_workers=how.num_workers, gpus=how.gpus,
    )
