# The networks: the dense run (w0, rewind state, trained network), the masks of every
# pruning step and the pruned networks retrained with their masks held. Inputs, params and
# paths come from the plan and the layout (lottery_mia.plan, lottery_mia.layout).
rule train_dense:
    input:
        membership=lambda w: PLAN.membership(step(w)),
        checks=lambda w: ancient(L.data_checks(w.dataset)),
    output:
        model=StepKey.pattern(L.MODEL_FILE, dense=True),
        init=StepKey.pattern(L.INIT_FILE, dense=True),
        rewind=StepKey.pattern(L.REWIND_FILE, dense=True),
        metrics=StepKey.pattern(L.METRICS_FILE, dense=True),
    log:
        L.log_of(StepKey.pattern(dense=True), "train_dense"),
    benchmark:
        L.benchmark_of(StepKey.pattern(dense=True), "train_dense")
    retries: 2
    conda:
        "../envs/pytorch.yaml"
    threads: CFG.threads.train
    resources:
        gpu=train_gpus,
        runtime=train_minutes,
    params:
        run=lambda w: PLAN.train_params(step(w)),
        how=lambda w: PLAN.how(step(w)),
    script:
        "../workflow/scripts/train_dense.py"


# One pruning step of a method (pruning.methods): the mask, from the network the method
# scores and the mask it starts from (Plan.mask_inputs).
rule prune_mask:
    input:
        unpack(lambda w: PLAN.mask_inputs(step(w))),
    output:
        mask=StepKey.pattern(L.MASK_FILE),
        report=StepKey.pattern(L.MASK_REPORT),
    log:
        L.log_of(StepKey.pattern(), "prune_mask"),
    wildcard_constraints:
        method="|".join(sorted(METHODS)),
    conda:
        "../envs/pytorch.yaml"
    threads: CFG.threads.train
    params:
        step=lambda w: PLAN.prune_params(step(w)),
        how=lambda w: PLAN.how(step(w)),
    script:
        "../workflow/scripts/prune_mask.py"


# The pruned network of a step, retrained with the mask held from the method's start state
# (the rewind state, w0, or fresh random weights).
rule train_ticket:
    input:
        unpack(lambda w: PLAN.ticket_inputs(step(w))),
    output:
        model=StepKey.pattern(L.MODEL_FILE),
        metrics=StepKey.pattern(L.METRICS_FILE),
    log:
        L.log_of(StepKey.pattern(), "train_ticket"),
    benchmark:
        L.benchmark_of(StepKey.pattern(), "train_ticket")
    wildcard_constraints:
        method="|".join(sorted(METHODS)),
    retries: 2
    conda:
        "../envs/pytorch.yaml"
    threads: CFG.threads.train
    resources:
        gpu=train_gpus,
        runtime=train_minutes,
    params:
        step=lambda w: PLAN.train_params(step(w)),
        how=lambda w: PLAN.how(step(w)),
    script:
        "../workflow/scripts/train_ticket.py"


rule extract_confidences:
    input:
        unpack(lambda w: PLAN.scored_inputs(model(w))),
    output:
        ModelKey.pattern(L.CONFIDENCES),
    log:
        L.log_of(ModelKey.pattern(), "extract_confidences"),
    benchmark:
        L.benchmark_of(ModelKey.pattern(), "extract_confidences")
    conda:
        "../envs/pytorch.yaml"
    threads: CFG.threads.confidences
    resources:
        gpu=GPU,
    params:
        model=lambda w: PLAN.score_params(model(w)),
        how=lambda w: PLAN.how(model(w)),
    script:
        "../workflow/scripts/extract_confidences.py"
