import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.tables import write_tables
from lottery_mia.workflow import logged

p, out = snakemake.params, snakemake.output
with logged(snakemake.log[0], snakemake.rule):
    write_tables(
        attacks_csv=snakemake.input.attacks, score_paths=list(p.groups), arch=p.arch,
        ticket_sparsity=p.sparsity, attack=p.attack, n_bootstrap=p.n_bootstrap, seed=p.seed,
        out_table1_csv=out.table1_csv, out_table1_md=out.table1_md, out_verdicts=out.verdicts,
        out_attack_models=out.attack_models, verdict_attacks=list(p.verdict_attacks),
        method=p.method, training_csv=snakemake.input.training,
        method_groups=list(p.method_groups), method_kinds=dict(p.method_kinds),
        out_method_verdicts=out.method_verdicts,
    )
