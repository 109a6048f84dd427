rule train_dense:
    input:
        membership=f"{R}/{{dataset}}/membership.parquet",
    output:
        model=f"{R}/{{dataset}}/{{arch}}/dense/model.pt",
        init=f"{R}/{{dataset}}/{{arch}}/dense/init.pt",
        rewind=f"{R}/{{dataset}}/{{arch}}/dense/rewind.pt",
        metrics=f"{R}/{{dataset}}/{{arch}}/dense/metrics.json",
    log:
        "logs/{dataset}/{arch}/train_dense.log",
    benchmark:
        f"{R}/benchmarks/{{dataset}}/{{arch}}/train_dense.tsv"
    retries: 2
    conda:
        "../envs/pytorch.yaml"
    threads: THREADS.get("train", 1)
    resources:
        gpu=GPU,
        runtime=lambda wc, attempt: config.get("runtime", {}).get("train_minutes", 2880) * attempt,
    params:
        data=lambda w: data_params(w.dataset),
        recipe=lambda w: recipe(w.dataset, w.arch),
        recipe_key=lambda w: f"training.{w.dataset}.{w.arch}",
        seed=config["seed"],
        rewind_epoch=config["pruning"]["rewind_epoch"],
        device=config["device"],
        runtime=config.get("runtime", {}),
    script:
        "../workflow/scripts/train_dense.py"


rule prune_mask:
    input:
        model=f"{R}/{{dataset}}/{{arch}}/dense/model.pt",
    output:
        mask=f"{R}/{{dataset}}/{{arch}}/sparsity-{{sparsity}}/mask.pt",
        report=f"{R}/{{dataset}}/{{arch}}/sparsity-{{sparsity}}/mask.json",
    log:
        "logs/{dataset}/{arch}/sparsity-{sparsity}/prune_mask.log",
    conda:
        "../envs/pytorch.yaml"
    params:
        sparsity=lambda w: float(w.sparsity),
        prune_fc=config["pruning"]["prune_fc"],
    script:
        "../workflow/scripts/prune_mask.py"


rule train_ticket:
    input:
        membership=f"{R}/{{dataset}}/membership.parquet",
        mask=f"{R}/{{dataset}}/{{arch}}/sparsity-{{sparsity}}/mask.pt",
        rewind=f"{R}/{{dataset}}/{{arch}}/dense/rewind.pt",
    output:
        model=f"{R}/{{dataset}}/{{arch}}/sparsity-{{sparsity}}/model.pt",
        metrics=f"{R}/{{dataset}}/{{arch}}/sparsity-{{sparsity}}/metrics.json",
    log:
        "logs/{dataset}/{arch}/sparsity-{sparsity}/train_ticket.log",
    benchmark:
        f"{R}/benchmarks/{{dataset}}/{{arch}}/sparsity-{{sparsity}}/train_ticket.tsv"
    retries: 2
    conda:
        "../envs/pytorch.yaml"
    threads: THREADS.get("train", 1)
    resources:
        gpu=GPU,
        runtime=lambda wc, attempt: config.get("runtime", {}).get("train_minutes", 2880) * attempt,
    params:
        data=lambda w: data_params(w.dataset),
        recipe=lambda w: recipe(w.dataset, w.arch),
        recipe_key=lambda w: f"training.{w.dataset}.{w.arch}",
        seed=config["seed"],
        rewind_epoch=config["pruning"]["rewind_epoch"],
        sparsity=lambda w: float(w.sparsity),
        device=config["device"],
        runtime=config.get("runtime", {}),
    script:
        "../workflow/scripts/train_ticket.py"


rule extract_confidences:
    input:
        membership=f"{R}/{{dataset}}/membership.parquet",
        model=trained_model,
    output:
        f"{R}/{{dataset}}/{{arch}}/sparsity-{{sparsity}}/confidences.parquet",
    log:
        "logs/{dataset}/{arch}/sparsity-{sparsity}/extract_confidences.log",
    benchmark:
        f"{R}/benchmarks/{{dataset}}/{{arch}}/sparsity-{{sparsity}}/extract_confidences.tsv"
    conda:
        "../envs/pytorch.yaml"
    threads: THREADS.get("confidences", 1)
    resources:
        gpu=GPU,
    params:
        data=lambda w: data_params(w.dataset),
        sparsity=lambda w: float(w.sparsity),
        batch_size=config["confidences"].get("batch_size", 512),
        num_workers=lambda w: recipe(w.dataset, w.arch).get("num_workers", 4),
        device=config["device"],
        runtime=config.get("runtime", {}),
    script:
        "../workflow/scripts/extract_confidences.py"
