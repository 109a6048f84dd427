REP = config["report"]
T1_ARCH = REP["table1_arch"]
T1_SPARSITY = fmt_sparsity(REP["table1_sparsity"])
T1_METHOD = REP.get("table1_method", "oneshot")
T1_ATTACK = REP.get("attack", "mlp")
FIG2_N = REP["figure2_sample_size"]
TRANSFER_ROWS = [
    f"{R}/{TRANSFER['dataset']}/transfer/seed-{TRANSFER_REPLICATE}/n{TRANSFER['sample_size']}/{a}_{m}_sparsity-{s}.csv"
    for a, m, s in TRANSFER_MODELS
]
FIGURES = {
    "figure1": f"{R}/report/figure1_test_accuracy.png",
    "figure2": f"{R}/report/figure2_attack_vs_sparsity.png",
    "figure3": f"{R}/report/figure3_attack_vs_sample_size.png",
    "figure4": f"{R}/report/figure4_transfer.png",
    "figure5": f"{R}/report/figure5_attack_roc.png",
    "figure6": f"{R}/report/figure6_slices.png",
    "figure7": f"{R}/report/figure7_gap_vs_attack.png",
    "figure8": f"{R}/report/figure8_roc_all_attacks.png",
    "figure9": f"{R}/report/figure9_tpr_at_low_fpr.png",
}
ROC_MODELS = [
    {"dataset": d, "arch": a, "method": m, "sparsity": float(s), "sample_size": FIG2_N}
    for d, a, r, m, s in grid_models()
    if FIG2_N in GRIDS[d].sample_sizes and r == REPLICATES[0] and m in ("dense", T1_METHOD)
]
ROC_SCORES = [
    f"{model_dir(m['dataset'], m['arch'], REPLICATES[0], m['method'], fmt_sparsity(m['sparsity']))}/attack-n{FIG2_N}/scores.parquet"
    for m in ROC_MODELS
]


TABLE1_GROUPS = score_groups(lambda d, g: g.sample_sizes)
ROC_ALL_MODELS = [
    {"dataset": d, "arch": T1_ARCH, "method": m, "sparsity": float(s), "sample_size": n}
    for d, g in GRIDS.items()
    for n in [figure2_size(g)]
    for m, s in (("dense", "0"), (T1_METHOD, T1_SPARSITY))
]
ROC_ALL_SCORES = [
    f"{model_dir(m['dataset'], T1_ARCH, REPLICATES[0], m['method'], fmt_sparsity(m['sparsity']))}/attack-n{m['sample_size']}/scores.parquet"
    for m in ROC_ALL_MODELS
]
SLICE_GROUPS = score_groups(lambda d, g: [figure2_size(g)])
# Every method at every sparsity (Table 1's architecture, Figure 2's sample size): the
# ticket-vs-control verdicts.
METHOD_GROUPS = score_groups(
    lambda d, g: [figure2_size(g)],
    models=[pair for s in config["sparsities"] for pair in models_at(s)],
)
METHODS_DESCRIBED = [
    {"name": "dense", "kind": "dense", "description": "the dense network (sparsity 0)"}
] + [
    {"name": m, "kind": METHODS[m].kind, "description": METHODS[m].description}
    for m in METHOD_NAMES
]


rule summarize_training:
    input:
        metrics=all_training_metrics(),
        membership=[f"{R}/{d}/membership.parquet" for d in GRIDS],
    output:
        f"{R}/summary/training.csv",
    log:
        "logs/summary/training.log",
    conda:
        "../envs/analysis.yaml"
    params:
        datasets=list(GRIDS),
        models=[{k: v for k, v in t.items() if k != "metrics"} for t in TRAINING_MODELS],
    script:
        "../workflow/scripts/summarize_training.py"


rule summarize_attacks:
    input:
        metrics=all_attack_results("metrics.json"),
        scores=all_attack_results("scores.parquet"),
    output:
        f"{R}/summary/attacks.csv",
    log:
        "logs/summary/attacks.log",
    conda:
        "../envs/analysis.yaml"
    params:
        n_bootstrap=N_BOOTSTRAP,
        seed=ATTACK.get("seed", 0),
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
        replicate=TRANSFER_REPLICATE,
    script:
        "../workflow/scripts/summarize_transfer.py"


rule tables:
    input:
        attacks=f"{R}/summary/attacks.csv",
        training=f"{R}/summary/training.csv",
        scores=group_paths(TABLE1_GROUPS),
        method_scores=group_paths(METHOD_GROUPS),
    output:
        table1_csv=f"{R}/report/table1.csv",
        table1_md=f"{R}/report/table1.md",
        verdicts=f"{R}/report/verdicts.csv",
        attack_models=f"{R}/report/attack_models.csv",
        method_verdicts=f"{R}/report/method_verdicts.csv",
    log:
        "logs/report/tables.log",
    conda:
        "../envs/analysis.yaml"
    params:
        groups=TABLE1_GROUPS,
        method_groups=METHOD_GROUPS,
        method_kinds={m["name"]: m["kind"] for m in METHODS_DESCRIBED},
        arch=T1_ARCH,
        sparsity=float(T1_SPARSITY),
        method=T1_METHOD,
        attack=T1_ATTACK,
        verdict_attacks=REP.get("verdict_attacks", [T1_ATTACK, "loss"]),
        n_bootstrap=N_BOOTSTRAP,
        seed=ATTACK.get("seed", 0),
    script:
        "../workflow/scripts/tables.py"


rule slices:
    input:
        attacks=f"{R}/summary/attacks.csv",
        scores=group_paths(SLICE_GROUPS),
    output:
        f"{R}/summary/slices.csv",
    log:
        "logs/summary/slices.log",
    conda:
        "../envs/analysis.yaml"
    params:
        groups=SLICE_GROUPS,
        attacks=REP.get("slice_attacks", [T1_ATTACK, "loss"]),
        n_bootstrap=N_BOOTSTRAP,
        seed=ATTACK.get("seed", 0),
    script:
        "../workflow/scripts/slices.py"


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
        sample_size=FIG2_N,
        attack=T1_ATTACK,
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
        sparsity=REP["figure3_sparsity"],
        attack=T1_ATTACK,
        method=T1_METHOD,
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
        attack=T1_ATTACK,
    script:
        "../workflow/scripts/figure_roc.py"


rule figure_slices:
    input:
        f"{R}/summary/slices.csv",
    output:
        FIGURES["figure6"],
    log:
        "logs/report/figure6.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow/scripts/figure_slices.py"


rule figure_gap:
    input:
        training=f"{R}/summary/training.csv",
        attacks=f"{R}/summary/attacks.csv",
    output:
        figure=FIGURES["figure7"],
        correlation=f"{R}/summary/gap_correlation.json",
    log:
        "logs/report/figure7.log",
    conda:
        "../envs/analysis.yaml"
    params:
        sample_size=FIG2_N,
        attack=T1_ATTACK,
    script:
        "../workflow/scripts/figure_gap.py"


rule figure_roc_all_attacks:
    input:
        scores=ROC_ALL_SCORES,
        attacks=f"{R}/summary/attacks.csv",
    output:
        FIGURES["figure8"],
    log:
        "logs/report/figure8.log",
    conda:
        "../envs/analysis.yaml"
    params:
        models=ROC_ALL_MODELS,
    script:
        "../workflow/scripts/figure_roc_all_attacks.py"


rule figure_low_fpr:
    input:
        f"{R}/summary/attacks.csv",
    output:
        FIGURES["figure9"],
    log:
        "logs/report/figure9.log",
    conda:
        "../envs/analysis.yaml"
    params:
        arch=T1_ARCH,
        sample_size=FIG2_N,
        attacks=list(dict.fromkeys([T1_ATTACK, "loss"] + REF_ATTACKS)),
        method=T1_METHOD,
    script:
        "../workflow/scripts/figure_low_fpr.py"


rule report:
    input:
        **FIGURES,
        table1=f"{R}/report/table1.csv",
        verdicts=f"{R}/report/verdicts.csv",
        attack_models=f"{R}/report/attack_models.csv",
        method_verdicts=f"{R}/report/method_verdicts.csv",
        slices=f"{R}/summary/slices.csv",
        gap=f"{R}/summary/gap_correlation.json",
        training=f"{R}/summary/training.csv",
        attacks=f"{R}/summary/attacks.csv",
        transfer=f"{R}/summary/transfer.csv",
        benchmarks=f"{R}/summary/benchmarks.csv",
    output:
        REPORT,
    log:
        "logs/report/report.log",
    conda:
        "../envs/analysis.yaml"
    params:
        config=config,
        table1_arch=T1_ARCH,
        table1_sparsity=float(T1_SPARSITY),
        table1_method=T1_METHOD,
        attack=T1_ATTACK,
        methods=METHODS_DESCRIBED,
    script:
        "../workflow/scripts/report.py"
