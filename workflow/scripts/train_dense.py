import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.jobs import dataspec, logged
from lottery_mia.jobs.train import train_dense

p, out = snakemake.params, snakemake.output
r, how = p.run, p.how
with logged(snakemake.log[0], snakemake.rule):
    train_dense(
        data=dataspec(r["data"], snakemake.input.membership), arch=snakemake.wildcards.arch,
        recipe=r["recipe"], recipe_key=r["recipe_key"], seed=r["seed"],
        rewind_epoch=r["rewind_epoch"], rewind_step=r["rewind_step"], device=how.device,
        out_model=out.model, out_init=out.init, out_rewind=out.rewind,
        out_metrics=out.metrics, threads=snakemake.threads, runtime=how.runtime,
        num_workers=how.num_workers, gpus=how.gpus,
    )
