import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.jobs import logged
from lottery_mia.jobs.tables import write_tables

p, out, v = snakemake.params, snakemake.output, snakemake.params.values
with logged(snakemake.log[0], snakemake.rule):
    write_tables(
        attacks_csv=snakemake.input.attacks, score_paths=list(p.groups), arch=v["arch"],
        ticket_sparsity=v["table1_sparsity"], attack=v["attack"], method=v["method"],
        margins=v["margins"], primary=v["primary"],
        n_bootstrap=p.n_bootstrap, seed=p.seed, out_table1_csv=out.table1_csv,
        out_table1_md=out.table1_md, out_verdicts=out.verdicts,
        out_attack_models=out.attack_models, verdict_attacks=list(p.verdict_attacks),
        training_csv=snakemake.input.training, method_groups=list(p.method_groups),
        method_kinds=dict(p.method_kinds), out_method_verdicts=out.method_verdicts,
        out_pair_verdicts=out.pair_verdicts, out_defence_verdicts=out.defence_verdicts,
        defences=dict(v["defences"]), defence_bases=dict(v["defence_bases"]),
    )
