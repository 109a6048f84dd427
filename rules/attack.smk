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
        confidences=f"{MODEL_DIR}/confidences.parquet",
        sample=f"{R}/{{dataset}}/attack_samples/n{{n}}.parquet",
    output:
        metrics=f"{MODEL_DIR}/attack-n{{n}}/metrics.json",
        scores=f"{MODEL_DIR}/attack-n{{n}}/scores.parquet",
    log:
        "logs/{dataset}/{arch}/seed-{replicate}/sparsity-{sparsity}/fit_attack_n{n}.log",
    conda:
        "../envs/analysis.yaml"
    params:
        attacks=ATTACKS,
        settings={name: ATTACK.get(name) or {} for name in ATTACK.get("models", ["mlp"])},
        features=ATTACK.get("features", "softmax"),
        seed=ATTACK.get("seed", 0),
        n_bootstrap=N_BOOTSTRAP,
        replicate=lambda w: int(w.replicate),
    script:
        "../workflow/scripts/fit_attack.py"


rule transfer_attack:
    input:
        source=f"{MODEL_DIR}/confidences.parquet",
        sample=f"{R}/{{dataset}}/attack_samples/n{{n}}.parquet",
        targets=lambda w: [
            f"{model_dir(w.dataset, a, w.replicate, s)}/confidences.parquet"
            for a, s in TRANSFER_MODELS
        ],
    output:
        f"{R}/{{dataset}}/transfer/seed-{{replicate}}/n{{n}}/{{arch}}_sparsity-{{sparsity}}.csv",
    log:
        "logs/{dataset}/transfer/seed-{replicate}/n{n}/{arch}_sparsity-{sparsity}.log",
    conda:
        "../envs/analysis.yaml"
    params:
        targets=[{"arch": a, "sparsity": float(s)} for a, s in TRANSFER_MODELS],
        attack=TRANSFER.get("attack", "mlp"),
        settings=ATTACK.get(TRANSFER.get("attack", "mlp")) or {},
        features=ATTACK.get("features", "softmax"),
        seed=ATTACK.get("seed", 0),
        n_bootstrap=N_BOOTSTRAP,
    script:
        "../workflow/scripts/transfer_attack.py"
