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
        seed=config["attack"].get("seed", 0),
        test_fraction=config["attack"].get("test_fraction", 0.5),
    script:
        "../workflow/scripts/attack_sample.py"


rule fit_attack:
    input:
        confidences=f"{R}/{{dataset}}/{{arch}}/sparsity-{{sparsity}}/confidences.parquet",
        sample=f"{R}/{{dataset}}/attack_samples/n{{n}}.parquet",
    output:
        model=f"{R}/{{dataset}}/{{arch}}/sparsity-{{sparsity}}/attack-n{{n}}/attack.pkl",
        metrics=f"{R}/{{dataset}}/{{arch}}/sparsity-{{sparsity}}/attack-n{{n}}/metrics.json",
        scores=f"{R}/{{dataset}}/{{arch}}/sparsity-{{sparsity}}/attack-n{{n}}/scores.parquet",
    log:
        "logs/{dataset}/{arch}/sparsity-{sparsity}/fit_attack_n{n}.log",
    benchmark:
        f"{R}/benchmarks/{{dataset}}/{{arch}}/sparsity-{{sparsity}}/fit_attack_n{{n}}.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        mlp=config["attack"]["mlp"],
        features=config["attack"].get("features", "softmax"),
        seed=config["attack"].get("seed", 0),
    script:
        "../workflow/scripts/fit_attack.py"


rule transfer_attack:
    input:
        attack=f"{R}/{{dataset}}/{{arch}}/sparsity-{{sparsity}}/attack-n{{n}}/attack.pkl",
        sample=f"{R}/{{dataset}}/attack_samples/n{{n}}.parquet",
        targets=lambda w: [
            f"{R}/{w.dataset}/{a}/sparsity-{s}/confidences.parquet"
            for a, s in TRANSFER_MODELS
        ],
    output:
        f"{R}/{{dataset}}/transfer/n{{n}}/{{arch}}_sparsity-{{sparsity}}.csv",
    log:
        "logs/{dataset}/transfer/n{n}/{arch}_sparsity-{sparsity}.log",
    benchmark:
        f"{R}/benchmarks/{{dataset}}/transfer/n{{n}}/{{arch}}_sparsity-{{sparsity}}.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        targets=[{"arch": a, "sparsity": float(s)} for a, s in TRANSFER_MODELS],
    script:
        "../workflow/scripts/transfer_attack.py"
