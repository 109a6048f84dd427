REWIND = {"rewind_epoch": PRUNE.get("rewind_epoch"), "rewind_step": PRUNE.get("rewind_step")}


rule train_dense:
    input:
        membership=run_membership,
    output:
        model=f"{DENSE_DIR}/model.pt",
        init=f"{DENSE_DIR}/init.pt",
        rewind=f"{DENSE_DIR}/rewind.pt",
        metrics=f"{DENSE_DIR}/metrics.json",
    log:
        "logs/{dataset}/{arch}/{run}/dense/sparsity-0/train_dense.log",
    benchmark:
        f"{R}/benchmarks/{{dataset}}/{{arch}}/{{run}}/dense/sparsity-0/train_dense.tsv"
    retries: 2
    conda:
        "../envs/pytorch.yaml"
    threads: THREADS.get("train", 1)
    resources:
        gpu=GPU,
        runtime=lambda wc, attempt: config.get("runtime", {}).get("train_minutes", 2880) * attempt,
    params:
        run=run_params,
        rewind=REWIND,
        how=how_params,
    script:
        "../workflow/scripts/train_dense.py"


# One pruning step of a method (pruning.methods): the mask, from the network the method
# scores and the mask it starts from (see mask_inputs in common.smk).
rule prune_mask:
    input:
        unpack(mask_inputs),
    output:
        mask=f"{STEP_DIR}/mask.pt",
        report=f"{STEP_DIR}/mask.json",
    log:
        "logs/{dataset}/{arch}/{run}/{method}/{point}/prune_mask.log",
    wildcard_constraints:
        method=TICKET_METHODS,
    conda:
        "../envs/pytorch.yaml"
    threads: THREADS.get("train", 1)
    params:
        step=prune_params,
        prune_fc=PRUNE["prune_fc"],
        how=how_params,
    script:
        "../workflow/scripts/prune_mask.py"


# The pruned network of a step, retrained with the mask held from the method's start state
# (the rewind state, w0, or fresh random weights).
rule train_ticket:
    input:
        unpack(ticket_inputs),
        mask=f"{STEP_DIR}/mask.pt",
    output:
        model=f"{STEP_DIR}/model.pt",
        metrics=f"{STEP_DIR}/metrics.json",
    log:
        "logs/{dataset}/{arch}/{run}/{method}/{point}/train_ticket.log",
    benchmark:
        f"{R}/benchmarks/{{dataset}}/{{arch}}/{{run}}/{{method}}/{{point}}/train_ticket.tsv"
    retries: 2
    wildcard_constraints:
        method=TICKET_METHODS,
    conda:
        "../envs/pytorch.yaml"
    threads: THREADS.get("train", 1)
    resources:
        gpu=GPU,
        runtime=lambda wc, attempt: config.get("runtime", {}).get("train_minutes", 2880) * attempt,
    params:
        step=ticket_params,
        rewind=REWIND,
        how=how_params,
    script:
        "../workflow/scripts/train_ticket.py"


rule extract_confidences:
    input:
        unpack(scored_model),
    output:
        f"{MODEL_DIR}/confidences.parquet",
    log:
        "logs/{dataset}/{arch}/{run}/{method}/sparsity-{sparsity}/extract_confidences.log",
    benchmark:
        f"{R}/benchmarks/{{dataset}}/{{arch}}/{{run}}/{{method}}/sparsity-{{sparsity}}/extract_confidences.tsv"
    conda:
        "../envs/pytorch.yaml"
    threads: THREADS.get("confidences", 1)
    resources:
        gpu=GPU,
    params:
        model=score_params,
        batch_size=config["confidences"].get("batch_size", 512),
        augmentations=config["confidences"].get("augmentations", 1),
        how=how_params,
    script:
        "../workflow/scripts/extract_confidences.py"
