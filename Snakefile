# lottery-mia: membership inference on lottery-ticket networks vs their dense parents.
# The DAG: membership split -> per replicate seed: dense training -> masks -> ticket
#          retraining -> confidences -> attacks on stratified attack samples (with bootstrap
#          intervals) / transfer -> summaries -> Table 1, verdicts, figures, report.
# Run:  snakemake --cores all            (see README.md)
#
# The config is typed (lottery_mia.config), the grid planned from it (lottery_mia.plan) and
# every path comes from one layout (lottery_mia.layout); the rules ask the plan.

# A --configfile given on the command line is complete by itself (config/paper.yaml, say):
# it replaces the default rather than being merged into it, so no default dataset leaks in.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/attack.smk"
include: "rules/report.smk"


localrules:
    all,
    check_data,
    summarize_training,
    summarize_attacks,
    summarize_transfer,
    summarize_benchmarks,
    gap_correlation,
    tables,
    slices,
    figure,
    report,


rule all:
    input:
        L.REPORT,
        *L.REPORT_TABLES.values(),
        L.SUMMARY_TABLES["benchmarks"],


# device: cuda on a machine without a GPU stops a local run before its first job (the
# jobs of a cluster executor run elsewhere: there it stays the warning of the DAG build).
# A local run also starts the warm worker (lottery_mia.jobs.warm): the jobs fork from one
# process that has imported torch, pandas and the package, instead of importing them each;
# LOTTERY_MIA_WARM=0 turns it off. Cluster jobs run elsewhere and start as before.
onstart:
    if getattr(workflow.executor_plugin, "name", None) == "local":
        if NO_GPU:
            raise WorkflowError(NO_GPU)
        WARM.append(warm.start(SRC, f"{L.LOGS}/warm_worker.log"))


# Where to look once the run is done (not printed after a dry run or a failure).
onsuccess:
    stop_warm_worker()
    if Path(L.REPORT).exists():
        logger.info(f"The report of this run: {Path(L.REPORT).resolve()}")


onerror:
    stop_warm_worker()
