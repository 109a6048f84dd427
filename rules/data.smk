rule membership_split:
    output:
        f"{R}/{{dataset}}/membership.parquet",
    log:
        "logs/{dataset}/membership_split.log",
    conda:
        "../envs/pytorch.yaml"
    params:
        data=lambda w: data_params(w.dataset),
        download=lambda w: config["datasets"][w.dataset].get("download", False),
        members=lambda w: config["datasets"][w.dataset].get("members"),
        nonmembers=lambda w: config["datasets"][w.dataset].get("nonmembers"),
        scored_members=lambda w: config["datasets"][w.dataset].get("scored_members"),
        split_seed=lambda w: config["datasets"][w.dataset].get("split_seed", 0),
    script:
        "../workflow/scripts/membership_split.py"
