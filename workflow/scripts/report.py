import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.report import write_report
from lottery_mia.workflow import logged

inp, p = snakemake.input, snakemake.params
with logged(snakemake.log[0], snakemake.rule):
    write_report(
        table1_csv=inp.table1, verdicts_csv=inp.verdicts, attack_models_csv=inp.attack_models,
        slices_csv=inp.slices, gap_json=inp.gap, training_csv=inp.training,
        attacks_csv=inp.attacks, transfer_csv=inp.transfer, benchmarks_csv=inp.benchmarks,
        figures={k: inp[k] for k in inp.keys() if k.startswith("figure")},
        config=p.config, table1_arch=p.table1_arch, table1_sparsity=p.table1_sparsity,
        attack=p.attack, output=snakemake.output[0], table1_method=p.table1_method,
        methods=list(p.methods), method_verdicts_csv=inp.method_verdicts,
    )
