# Jobs that depend only on the data and the membership split.
rule membership_split:
    output:
        L.membership("{dataset}"),
    log:
        L.log_of("{dataset}", "membership_split"),
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
    conda:
        "../envs/analysis.yaml"
    params:
        n=lambda w: int(w.n),
        seed=CFG.attack.seed,
        test_fraction=CFG.attack.test_fraction,
    script:
        "../workflow/scripts/attack_sample.py"
