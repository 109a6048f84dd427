import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.report import write_report
from lottery_mia.workflow import logged

inp, p = snakemake.input, snakemake.params
with logged(snakemake.log[0], snakemake.rule):
    write_report(
        table1_csv=inp.table1, training_csv=inp.training, attacks_csv=inp.attacks,
        transfer_csv=inp.transfer,
        figures={k: inp[k] for k in ("figure1", "figure2", "figure3", "figure4", "figure5")},
        config=p.config, table1_arch=p.table1_arch, table1_sparsity=p.table1_sparsity,
        output=snakemake.output[0],
    )
