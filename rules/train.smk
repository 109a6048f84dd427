rule train_dense:
    input:
        membership=run_membership,
    output:
        model=f"{DENSE_DIR}/model.pt",
        init=f"{DENSE_DIR}/init.pt",
        rewind=f"{DENSE_DIR}/rewind.pt",
        metrics=f"{DENSE_DIR}/metrics.json",
    log:
        "logs/{dataset}/{arch}/{run}/sparsity-0/train_dense.log",
    benchmark:
        f"{R}/benchmarks/{{dataset}}/{{arch}}/{{run}}/sparsity-0/train_dense.tsv"
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
        seed=lambda w: run_seed(w.run),
        rewind_epoch=config["pruning"]["rewind_epoch"],
        device=config["device"],
        runtime=config.get("runtime", {}),
    script:
        "../workflow/scripts/train_dense.py"


rule prune_mask:
    input:
        model=f"{DENSE_DIR}/model.pt",
    output:
        mask=f"{MODEL_DIR}/mask.pt",
        report=f"{MODEL_DIR}/mask.json",
    log:
        "logs/{dataset}/{arch}/{run}/sparsity-{sparsity}/prune_mask.log",
    wildcard_constraints:
        sparsity=r"0\.[0-9]+",
    conda:
        "../envs/pytorch.yaml"
    params:
        sparsity=lambda w: float(w.sparsity),
        prune_fc=config["pruning"]["prune_fc"],
    script:
        "../workflow/scripts/prune_mask.py"


rule train_ticket:
    input:
        membership=run_membership,
        mask=f"{MODEL_DIR}/mask.pt",
        rewind=f"{DENSE_DIR}/rewind.pt",
    output:
        model=f"{MODEL_DIR}/model.pt",
        metrics=f"{MODEL_DIR}/metrics.json",
    log:
        "logs/{dataset}/{arch}/{run}/sparsity-{sparsity}/train_ticket.log",
    benchmark:
        f"{R}/benchmarks/{{dataset}}/{{arch}}/{{run}}/sparsity-{{sparsity}}/train_ticket.tsv"
    retries: 2
    wildcard_constraints:
        sparsity=r"0\.[0-9]+",
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
        seed=lambda w: run_seed(w.run),
        rewind_epoch=config["pruning"]["rewind_epoch"],
        sparsity=lambda w: float(w.sparsity),
        device=config["device"],
        runtime=config.get("runtime", {}),
    script:
        "../workflow/scripts/train_ticket.py"


rule extract_confidences:
    input:
        membership=run_membership,
        model=f"{MODEL_DIR}/model.pt",
    output:
        f"{MODEL_DIR}/confidences.parquet",
    log:
        "logs/{dataset}/{arch}/{run}/sparsity-{sparsity}/extract_confidences.log",
    benchmark:
        f"{R}/benchmarks/{{dataset}}/{{arch}}/{{run}}/sparsity-{{sparsity}}/extract_confidences.tsv"
    conda:
        "../envs/pytorch.yaml"
    threads: THREADS.get("confidences", 1)
    resources:
        gpu=GPU,
    params:
        data=lambda w: data_params(w.dataset),
        sparsity=lambda w: float(w.sparsity),
        replicate=lambda w: run_seed(w.run),
        batch_size=config["confidences"].get("batch_size", 512),
        augmentations=config["confidences"].get("augmentations", 1),
        num_workers=lambda w: recipe(w.dataset, w.arch).get("num_workers", 4),
        device=config["device"],
        runtime=config.get("runtime", {}),
    script:
        "../workflow/scripts/extract_confidences.py"
