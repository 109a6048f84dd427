import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.training import prune_mask
from lottery_mia.workflow import logged

with logged(snakemake.log[0], snakemake.rule):
    prune_mask(
        dense_model=snakemake.input.model, sparsity=snakemake.params.sparsity,
        prune_fc=snakemake.params.prune_fc, out_mask=snakemake.output.mask,
        out_report=snakemake.output.report,
    )
