# Jobs that depend only on the data and the membership split. They run first (priority)
# and every training job waits for check_data's record (as an `ancient` input: it orders
# the jobs but a new record never retrains a network), so a problem of the data or the split
# stops the run before the first network trains.
rule membership_split:
    output:
        L.membership("{dataset}"),
    log:
        L.log_of("{dataset}", "membership_split"),
    priority: 10
    conda:
        "../envs/pytorch.yaml"
    params:
        data=lambda w: PLAN.data_params(w.dataset),
        split=lambda w: CFG.datasets[w.dataset].split_params(),
        how=lambda w: CFG.how_to_run(download=CFG.datasets[w.dataset].download),
    script:
        "../workflow/scripts/membership_split.py"


rule reference_split:
    input:
        membership=L.membership("{dataset}"),
    output:
        inclusion=L.inclusion("{dataset}"),
        memberships=[L.membership("{dataset}", run) for run in PLAN.reference_runs],
    log:
        L.log_of("{dataset}", "reference_split"),
    priority: 10
    conda:
        "../envs/analysis.yaml"
    params:
        references=CFG.references.count,
        seed=CFG.references.seed,
    script:
        "../workflow/scripts/reference_split.py"


rule attack_sample:
    input:
        membership=L.membership("{dataset}"),
    output:
        L.attack_sample("{dataset}", "{n}"),
    log:
        L.log_of("{dataset}", "attack_sample_n{n}"),
    priority: 10
    conda:
        "../envs/analysis.yaml"
    params:
        n=lambda w: int(w.n),
        seed=CFG.attack.seed,
        test_fraction=CFG.attack.test_fraction,
    script:
        "../workflow/scripts/attack_sample.py"


rule check_data:
    input:
        unpack(lambda w: PLAN.data_check_inputs(w.dataset)),
    output:
        L.data_checks("{dataset}"),
    log:
        L.log_of("{dataset}", "check_data"),
    priority: 10
    conda:
        "../envs/analysis.yaml"
    params:
        source=lambda w: CFG.datasets[w.dataset].source,
        data=lambda w: PLAN.data_params(w.dataset),
        sample_sizes=lambda w: list(PLAN.grids[w.dataset].sample_sizes),
    script:
        "../workflow/scripts/check_data.py"


rule input_features:
    input:
        membership=L.membership("{dataset}"),
    output:
        L.input_features("{dataset}"),
    log:
        L.log_of("{dataset}", "input_features"),
    conda:
        "../envs/pytorch.yaml"
    params:
        data=lambda w: PLAN.data_params(w.dataset),
        size=8,
    script:
        "../workflow/scripts/input_features.py"
