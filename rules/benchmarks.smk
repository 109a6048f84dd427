# Snakemake's own per-job records (benchmark: directives of the training, scoring and attack
# rules, under results/benchmarks/), summarised into one table.
rule summarize_benchmarks:
    input:
        all_training_metrics(),
        all_attack_results("metrics.json"),
        TRANSFER_ROWS,
    output:
        f"{R}/summary/benchmarks.csv",
    log:
        "logs/summary/benchmarks.log",
    conda:
        "../envs/analysis.yaml"
    params:
        directory=f"{R}/benchmarks",
    script:
        "../workflow/scripts/summarize_benchmarks.py"
