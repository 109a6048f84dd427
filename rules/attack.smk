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


rule fit_attack:
    input:
        unpack(reference_inputs),
        confidences=f"{MODEL_DIR}/confidences.parquet",
        sample=f"{R}/{{dataset}}/attack_samples/n{{n}}.parquet",
    output:
        metrics=f"{MODEL_DIR}/attack-n{{n}}/metrics.json",
        scores=f"{MODEL_DIR}/attack-n{{n}}/scores.parquet",
    log:
        "logs/{dataset}/{arch}/{run}/{method}/sparsity-{sparsity}/fit_attack_n{n}.log",
    benchmark:
        f"{R}/benchmarks/{{dataset}}/{{arch}}/{{run}}/{{method}}/sparsity-{{sparsity}}/fit_attack_n{{n}}.tsv"
    wildcard_constraints:
        run=r"seed-[0-9]+",
    conda:
        "../envs/analysis.yaml"
    params:
        attacks=attacks_of,
        settings=lambda w: {name: ATTACK.get(name) or {} for name in attacks_of(w)},
        features=ATTACK.get("features", "softmax"),
        seed=ATTACK.get("seed", 0),
        n_bootstrap=N_BOOTSTRAP,
        replicate=lambda w: run_seed(w.run),
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
        settings=ATTACK.get(TRANSFER.get("attack", "mlp")) or {},
        features=ATTACK.get("features", "softmax"),
        seed=ATTACK.get("seed", 0),
        n_bootstrap=N_BOOTSTRAP,
    script:
        "../workflow/scripts/transfer_attack.py"
