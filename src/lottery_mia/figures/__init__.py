"""The report's figures as data: a registry of figures, each one module of this package.

A figure module draws one figure and registers it with :func:`register_figure`: its name
(``figure<N>``), its file under ``results/report/``, the heading and caption the report
shows, the summary tables it reads (by name: ``training``, ``attacks``, ``transfer``,
``slices``, ``gap_correlation``), the attack scores it reads (``roc``: the first seed's dense
network and Table 1's method at Figure 2's sample size, every architecture and sparsity;
``table1``: Table 1's two models) and the report settings it takes (by name, from
:meth:`lottery_mia.plan.Plan.report_values`). One ``figure`` rule draws any of them and the
report loops over the registry, so adding a figure is one new module here.
"""

from __future__ import annotations

from .registry import FIGURES, FigureData, FigureSpec, figure_specs, register_figure

FIGURES.load(__name__, skip=("registry", "style"))  # every other module registers a figure

__all__ = ["FIGURES", "FigureData", "FigureSpec", "register_figure", "figure_specs"]
