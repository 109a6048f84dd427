import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.jobs import logged
from lottery_mia.jobs.report import write_report

inp, p = snakemake.input, snakemake.params
with logged(snakemake.log[0], snakemake.rule):
    write_report(
        summary={k.removeprefix("summary_"): v for k, v in inp.items()
                 if k.startswith("summary_")},
        report_tables={k.removeprefix("report_"): v for k, v in inp.items()
                       if k.startswith("report_")},
        figures={k: v for k, v in inp.items() if k.startswith("figure")},
        config=p.config, values=p.values, methods=list(p.methods), output=snakemake.output[0],
    )
