# lottery-mia: membership inference on lottery-ticket networks vs their dense parents.
# The DAG: membership split -> dense training -> masks -> ticket retraining -> confidences
#          -> attack samples -> MLP attacks / transfer -> summaries -> Table 1, figures, report.
# Run:  snakemake --cores all            (see README.md)

# A --configfile given on the command line is complete by itself (config/paper.yaml, say):
# it replaces the default rather than being merged into it, so no default dataset leaks in.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/attack.smk"
include: "rules/report.smk"
include: "rules/benchmarks.smk"


localrules:
    all,
    summarize_training,
    summarize_attacks,
    summarize_transfer,
    summarize_benchmarks,
    table1,
    figure_test_accuracy,
    figure_attack_vs_sparsity,
    figure_attack_vs_sample_size,
    figure_transfer,
    figure_roc,
    report,


rule all:
    input:
        REPORT,
        rules.table1.output,
        rules.summarize_benchmarks.output,
