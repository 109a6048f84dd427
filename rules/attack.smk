# One job per model runs every attack on every attack sample size of its dataset (one job per
# size would triple the jobs; the paper grid's DAG has to build in seconds). Datasets with
# the same list of sample sizes share a rule: fit_attack, then fit_attack_1, ... for others.
for _i, (_sizes, _datasets) in enumerate(PLAN.size_groups):

    rule:
        name:
            "fit_attack" if _i == 0 else f"fit_attack_{_i}"
        input:
            unpack(lambda w: PLAN.attack_inputs(model(w))),
        output:
            metrics=[ModelKey.attack_pattern(n, "metrics.json") for n in _sizes],
            scores=[ModelKey.attack_pattern(n, "scores.parquet") for n in _sizes],
        log:
            L.log_of(ModelKey.pattern(), "fit_attack"),
        benchmark:
            L.benchmark_of(ModelKey.pattern(), "fit_attack")
        wildcard_constraints:
            run=r"seed-[0-9]+",
            dataset="|".join(_datasets),
        conda:
            "../envs/analysis.yaml"
        params:
            target=lambda w: PLAN.attack_params(model(w)),
        script:
            "../workflow/scripts/fit_attack.py"


rule transfer_attack:
    input:
        source=ModelKey.pattern(L.CONFIDENCES),
        sample=L.attack_sample("{dataset}", "{n}"),
        targets=lambda w: PLAN.transfer_targets(model(w)),
    output:
        L.TRANSFER_PATTERN,
    log:
        L.log_for(L.TRANSFER_PATTERN),
    benchmark:
        L.benchmark_for(L.TRANSFER_PATTERN)
    wildcard_constraints:
        run=r"seed-[0-9]+",
    conda:
        "../envs/analysis.yaml"
    params:
        transfer=PLAN.transfer_params(),
    script:
        "../workflow/scripts/transfer_attack.py"
