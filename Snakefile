# lottery-mia: membership inference on lottery-ticket networks vs their dense parents.
# The DAG: membership split -> per replicate seed: dense training -> masks -> ticket
#          retraining -> confidences -> attacks on stratified attack samples (with bootstrap
#          intervals) / transfer -> summaries -> Table 1, verdicts, figures, report.
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
    tables,
    slices,
    figure_test_accuracy,
    figure_attack_vs_sparsity,
    figure_attack_vs_sample_size,
    figure_transfer,
    figure_roc,
    figure_slices,
    figure_gap,
    figure_roc_all_attacks,
    figure_low_fpr,
    report,


rule all:
    input:
        REPORT,
        rules.tables.output,
        rules.summarize_benchmarks.output,
