rule attack_sample:
    input:
        membership=f"{R}/{{dataset}}/membership.parquet",
    output:
        f"{R}/{{dataset}}/attack_samples/n{{n}}.parquet",
    log:
        "logs/{dataset}/attack_sample_n{n}.log",
    conda:
        "../envs/analysis.yaml"
    params:
        n=lambda w: int(w.n),
        seed=ATTACK.get("seed", 0),
        test_fraction=ATTACK.get("test_fraction", 0.5),
    script:
        "../workflow/scripts/attack_sample.py"


# One job per model runs every attack on every attack sample size of its dataset (one job per
# size would triple the jobs; the paper grid's DAG has to build in seconds). Datasets with
# the same list of sample sizes share a rule: fit_attack, then fit_attack_1, ... for others.
for _i, (_sizes, _datasets) in enumerate(SIZE_GROUPS):

    rule:
        name:
            "fit_attack" if _i == 0 else f"fit_attack_{_i}"
        input:
            unpack(reference_inputs),
            confidences=f"{MODEL_DIR}/confidences.parquet",
            samples=[f"{R}/{{dataset}}/attack_samples/n{n}.parquet" for n in _sizes],
        output:
            metrics=[f"{MODEL_DIR}/attack-n{n}/metrics.json" for n in _sizes],
            scores=[f"{MODEL_DIR}/attack-n{n}/scores.parquet" for n in _sizes],
        log:
            "logs/{dataset}/{arch}/{run}/{method}/sparsity-{sparsity}/fit_attack.log",
        benchmark:
            f"{R}/benchmarks/{{dataset}}/{{arch}}/{{run}}/{{method}}/sparsity-{{sparsity}}/fit_attack.tsv"
        wildcard_constraints:
            run=r"seed-[0-9]+",
            dataset="|".join(_datasets),
        conda:
            "../envs/analysis.yaml"
        params:
            sample_sizes=list(_sizes),
            target=attack_params,
            features=ATTACK.get("features", "softmax"),
            seed=ATTACK.get("seed", 0),
            n_bootstrap=N_BOOTSTRAP,
        script:
            "../workflow/scripts/fit_attack.py"


rule transfer_attack:
    input:
        source=f"{MODEL_DIR}/confidences.parquet",
        sample=f"{R}/{{dataset}}/attack_samples/n{{n}}.parquet",
        targets=lambda w: [
            f"{R}/{w.dataset}/{a}/{w.run}/{m}/sparsity-{s}/confidences.parquet"
            for a, m, s in TRANSFER_MODELS
        ],
    output:
        f"{R}/{{dataset}}/transfer/{{run}}/n{{n}}/{{arch}}_{{method}}_sparsity-{{sparsity}}.csv",
    log:
        "logs/{dataset}/transfer/{run}/n{n}/{arch}_{method}_sparsity-{sparsity}.log",
    benchmark:
        f"{R}/benchmarks/{{dataset}}/transfer/{{run}}/n{{n}}/{{arch}}_{{method}}_sparsity-{{sparsity}}.tsv"
    wildcard_constraints:
        run=r"seed-[0-9]+",
    conda:
        "../envs/analysis.yaml"
    params:
        targets=[{"arch": a, "method": m, "sparsity": float(s)} for a, m, s in TRANSFER_MODELS],
        attack=TRANSFER.get("attack", "mlp"),
        settings=canonical(ATTACK.get(TRANSFER.get("attack", "mlp")) or {}),
        features=ATTACK.get("features", "softmax"),
        seed=ATTACK.get("seed", 0),
        n_bootstrap=N_BOOTSTRAP,
    script:
        "../workflow/scripts/transfer_attack.py"
