import _checkout  # noqa: F401  (this checkout's src/ first on the import path)
from lottery_mia.jobs import logged
from lottery_mia.jobs.figure import draw_figure

f, inp = snakemake.params.figure, snakemake.input
with logged(snakemake.log[0], snakemake.rule):
    draw_figure(
        f["name"], tables={k: v for k, v in inp.items() if k != "scores"},
        scores=list(inp.get("scores") or []), models=list(f["models"]),
        params=dict(f["params"]), output=snakemake.output[0],
    )
