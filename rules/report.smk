TRANSFER_ROWS = [
    f"{R}/{TRANSFER['dataset']}/transfer/n{TRANSFER['sample_size']}/{a}_sparsity-{s}.csv"
    for a, s in TRANSFER_MODELS
]
FIGURES = {
    "figure1": f"{R}/report/figure1_test_accuracy.png",
    "figure2": f"{R}/report/figure2_attack_vs_sparsity.png",
    "figure3": f"{R}/report/figure3_attack_vs_sample_size.png",
    "figure4": f"{R}/report/figure4_transfer.png",
    "figure5": f"{R}/report/figure5_attack_roc.png",
}
ROC_N = config["report"]["figure2_sample_size"]
ROC_MODELS = [
    {"dataset": d, "arch": a, "sparsity": float(s), "sample_size": ROC_N}
    for d, a, s in grid_models()
    if ROC_N in GRIDS[d].sample_sizes
]
ROC_SCORES = [
    f"{R}/{m['dataset']}/{m['arch']}/sparsity-{fmt_sparsity(m['sparsity'])}/attack-n{ROC_N}/scores.parquet"
    for m in ROC_MODELS
]


rule summarize_training:
    input:
        all_training_metrics(),
    output:
        f"{R}/summary/training.csv",
    log:
        "logs/summary/training.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow/scripts/summarize_training.py"


rule summarize_attacks:
    input:
        all_attack_metrics(),
    output:
        f"{R}/summary/attacks.csv",
    log:
        "logs/summary/attacks.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow/scripts/summarize_attacks.py"


rule summarize_transfer:
    input:
        TRANSFER_ROWS,
    output:
        f"{R}/summary/transfer.csv",
    log:
        "logs/summary/transfer.log",
    conda:
        "../envs/analysis.yaml"
    params:
        dataset=TRANSFER["dataset"],
    script:
        "../workflow/scripts/summarize_transfer.py"


rule table1:
    input:
        attacks=f"{R}/summary/attacks.csv",
    output:
        csv=f"{R}/report/table1.csv",
        md=f"{R}/report/table1.md",
    log:
        "logs/report/table1.log",
    conda:
        "../envs/analysis.yaml"
    params:
        arch=config["report"]["table1_arch"],
        sparsity=config["report"]["table1_sparsity"],
    script:
        "../workflow/scripts/table1.py"


rule figure_test_accuracy:
    input:
        f"{R}/summary/training.csv",
    output:
        FIGURES["figure1"],
    log:
        "logs/report/figure1.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow/scripts/figure_test_accuracy.py"


rule figure_attack_vs_sparsity:
    input:
        f"{R}/summary/attacks.csv",
    output:
        FIGURES["figure2"],
    log:
        "logs/report/figure2.log",
    conda:
        "../envs/analysis.yaml"
    params:
        sample_size=config["report"]["figure2_sample_size"],
    script:
        "../workflow/scripts/figure_attack_vs_sparsity.py"


rule figure_attack_vs_sample_size:
    input:
        f"{R}/summary/attacks.csv",
    output:
        FIGURES["figure3"],
    log:
        "logs/report/figure3.log",
    conda:
        "../envs/analysis.yaml"
    params:
        sparsity=config["report"]["figure3_sparsity"],
    script:
        "../workflow/scripts/figure_attack_vs_sample_size.py"


rule figure_transfer:
    input:
        f"{R}/summary/transfer.csv",
    output:
        FIGURES["figure4"],
    log:
        "logs/report/figure4.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow/scripts/figure_transfer.py"


rule figure_roc:
    input:
        ROC_SCORES,
    output:
        FIGURES["figure5"],
    log:
        "logs/report/figure5.log",
    conda:
        "../envs/analysis.yaml"
    params:
        models=ROC_MODELS,
    script:
        "../workflow/scripts/figure_roc.py"


rule report:
    input:
        **FIGURES,
        table1=f"{R}/report/table1.csv",
        training=f"{R}/summary/training.csv",
        attacks=f"{R}/summary/attacks.csv",
        transfer=f"{R}/summary/transfer.csv",
    output:
        REPORT,
    log:
        "logs/report/report.log",
    conda:
        "../envs/analysis.yaml"
    params:
        config=config,
        table1_arch=config["report"]["table1_arch"],
        table1_sparsity=config["report"]["table1_sparsity"],
    script:
        "../workflow/scripts/report.py"
