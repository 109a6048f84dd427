# Summaries, the report's tables and figures, and the report. The figures are registered in
# lottery_mia.figures: one `figure` rule draws any of them.
rule summarize_training:
    input:
        metrics=[m["metrics"] for m in PLAN.training_models()],
        membership=[L.membership(d) for d in PLAN.grids],
    output:
        report(
            L.SUMMARY_TABLES["training"],
            caption="../workflow/report/training.rst",
            category="Summaries",
        ),
    log:
        L.log_for(L.SUMMARY_TABLES["training"]),
    conda:
        "../envs/analysis.yaml"
    params:
        datasets=list(PLAN.grids),
        models=[
            {k: v for k, v in m.items() if k != "metrics"}
            for m in PLAN.training_models()
        ],
    script:
        "../workflow/scripts/summarize_training.py"


rule summarize_attacks:
    input:
        metrics=PLAN.attack_results("metrics.json"),
        scores=PLAN.attack_results("scores.parquet"),
    output:
        report(
            L.SUMMARY_TABLES["attacks"],
            caption="../workflow/report/attacks.rst",
            category="Summaries",
        ),
    log:
        L.log_for(L.SUMMARY_TABLES["attacks"]),
    conda:
        "../envs/analysis.yaml"
    params:
        n_bootstrap=CFG.attack.n_bootstrap,
        seed=CFG.attack.seed,
        models=PLAN.attack_result_models(),
    script:
        "../workflow/scripts/summarize_attacks.py"


rule summarize_transfer:
    input:
        PLAN.transfer_rows(),
    output:
        L.SUMMARY_TABLES["transfer"],
    log:
        L.log_for(L.SUMMARY_TABLES["transfer"]),
    conda:
        "../envs/analysis.yaml"
    params:
        dataset=CFG.transfer.dataset,
        replicate=PLAN.seed_of(PLAN.transfer_run),
        sources=PLAN.transfer_sources(),
    script:
        "../workflow/scripts/summarize_transfer.py"


# Snakemake's own per-job records (benchmark: directives of the training, scoring and attack
# rules, under results/benchmarks/), summarised into one table once they are all written.
rule summarize_benchmarks:
    input:
        [m["metrics"] for m in PLAN.training_models()],
        PLAN.attack_results("metrics.json"),
        PLAN.transfer_rows(),
    output:
        L.SUMMARY_TABLES["benchmarks"],
    log:
        L.log_for(L.SUMMARY_TABLES["benchmarks"]),
    conda:
        "../envs/analysis.yaml"
    params:
        directory=L.BENCHMARKS,
        logs=L.LOGS,
    script:
        "../workflow/scripts/summarize_benchmarks.py"


rule gap_correlation:
    input:
        training=L.SUMMARY_TABLES["training"],
        attacks=L.SUMMARY_TABLES["attacks"],
    output:
        L.SUMMARY_TABLES["gap_correlation"],
    log:
        L.log_for(L.SUMMARY_TABLES["gap_correlation"]),
    conda:
        "../envs/analysis.yaml"
    params:
        sample_size=CFG.report.figure2_sample_size,
        attack=CFG.report.attack,
    script:
        "../workflow/scripts/gap_correlation.py"


rule tables:
    input:
        attacks=L.SUMMARY_TABLES["attacks"],
        training=L.SUMMARY_TABLES["training"],
        scores=[p for g in PLAN.verdict_groups() for p in g.paths],
        method_scores=[p for g in PLAN.method_groups() for p in g.paths],
    output:
        **{
            name: report(
                path, caption=f"../workflow/report/{name}.rst", category="Tables"
            )
            for name, path in L.REPORT_TABLES.items()
        },
    log:
        L.log_of(L.REPORT_DIR, "tables"),
    conda:
        "../envs/analysis.yaml"
    params:
        groups=[g.as_dict() for g in PLAN.verdict_groups()],
        method_groups=[g.as_dict() for g in PLAN.method_groups()],
        method_kinds={m["name"]: m["kind"] for m in PLAN.methods_described()},
        values=PLAN.report_values(),
        verdict_attacks=CFG.report.verdicts(PLAN.reference_attacks),
        n_bootstrap=CFG.attack.n_bootstrap,
        seed=CFG.attack.seed,
    script:
        "../workflow/scripts/tables.py"


rule slices:
    input:
        attacks=L.SUMMARY_TABLES["attacks"],
        scores=[p for g in PLAN.slice_groups() for p in g.paths],
    output:
        L.SUMMARY_TABLES["slices"],
    log:
        L.log_for(L.SUMMARY_TABLES["slices"]),
    conda:
        "../envs/analysis.yaml"
    params:
        groups=[g.as_dict() for g in PLAN.slice_groups()],
        attacks=CFG.report.slices,
        n_bootstrap=CFG.attack.n_bootstrap,
        seed=CFG.attack.seed,
    script:
        "../workflow/scripts/slices.py"


rule figure:
    input:
        unpack(lambda w: PLAN.figure_inputs(w.figure)),
    output:
        report(
            L.report_file("{figure}.png"),
            caption="../workflow/report/figure.rst",
            category="Figures",
            labels={"figure": "{figure}"},
        ),
    log:
        L.log_of(L.REPORT_DIR, "{figure}"),
    wildcard_constraints:
        figure="|".join(f.stem for f in FIGURES.values()),
    conda:
        "../envs/analysis.yaml"
    params:
        figure=lambda w: PLAN.figure_params(w.figure),
        about=lambda w: PLAN.figure_about(w.figure),
    script:
        "../workflow/scripts/figure.py"


rule report:
    input:
        **PLAN.figure_files(),
        **{f"summary_{k}": v for k, v in L.SUMMARY_TABLES.items()},
        **{f"report_{k}": v for k, v in L.REPORT_TABLES.items() if k != "table1_md"},
    output:
        report(L.REPORT, caption="../workflow/report/report.rst", category="Report"),
    log:
        L.log_of(L.REPORT_DIR, "report"),
    conda:
        "../envs/analysis.yaml"
    params:
        config=CFG.as_dict(),
        values=PLAN.report_values(),
        methods=PLAN.methods_described(),
    script:
        "../workflow/scripts/report.py"
