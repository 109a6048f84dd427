import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.report import write_table1
from lottery_mia.workflow import logged

with logged(snakemake.log[0], snakemake.rule):
    write_table1(
        attacks_csv=snakemake.input.attacks, arch=snakemake.params.arch,
        ticket_sparsity=snakemake.params.sparsity, out_csv=snakemake.output.csv,
        out_md=snakemake.output.md,
    )
