rule membership_split:
    output:
        f"{R}/{{dataset}}/membership.parquet",
    log:
        "logs/{dataset}/membership_split.log",
    conda:
        "../envs/pytorch.yaml"
    params:
        data=lambda w: data_params(w.dataset),
        split=lambda w: split_params(config["datasets"][w.dataset]),
        how=lambda w: how_to_run(download=config["datasets"][w.dataset].get("download", False)),
    script:
        "../workflow/scripts/membership_split.py"


rule reference_split:
    input:
        membership=f"{R}/{{dataset}}/membership.parquet",
    output:
        inclusion=f"{R}/{{dataset}}/references/inclusion.parquet",
        memberships=[
            f"{R}/{{dataset}}/references/ref-{k}/membership.parquet"
            for k in range(REF_COUNT)
        ],
    log:
        "logs/{dataset}/reference_split.log",
    conda:
        "../envs/analysis.yaml"
    params:
        references=REF_COUNT,
        seed=REF_SEED,
    script:
        "../workflow/scripts/reference_split.py"
