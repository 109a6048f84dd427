"""The registry of figures: what each figure is, reads and draws (see the package)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from ..registry import Registry

__all__ = ["FIGURES", "FigureData", "FigureSpec", "register_figure", "figure_specs"]


@dataclass(frozen=True)
class FigureSpec:
    name: str
    file: str
    title: str
    caption: str
    tables: tuple[str, ...] = ()
    scores: str | None = None
    params: tuple[str, ...] = ()
    draw: Callable | None = None
    note: Callable | None = None  # note(tables) -> a sentence the report prints under it

    @property
    def number(self) -> int:
        m = re.search(r"\d+", self.name)
        return int(m.group()) if m else 0

    @property
    def stem(self) -> str:
        return self.file.rsplit(".", 1)[0]


@dataclass
class FigureData:
    """What a figure's ``draw(data, output)`` gets: the summary tables it asked for (CSV
    tables as DataFrames, JSON as dicts), the attack-test scores of its models (dicts of the
    model's keys plus ``member`` and a ``score_<attack>`` array per attack) and its params."""

    tables: dict = field(default_factory=dict)
    scores: list = field(default_factory=list)
    params: dict = field(default_factory=dict)


FIGURES: Registry[FigureSpec] = Registry("figure", "the report's figures")


def register_figure(name: str, *, file: str, title: str, caption: str, tables=(),
                    scores: str | None = None, params=(), note: Callable | None = None):
    """Decorator of a figure's ``draw(data: FigureData, output) -> matplotlib Figure``;
    ``note(tables)``: an optional sentence under the figure in the report, from the summary
    tables it reads (loaded)."""
    def deco(draw):
        FIGURES.register(name, FigureSpec(name, file, title, caption, tuple(tables), scores,
                                          tuple(params), draw, note))
        return draw
    return deco


def figure_specs() -> list[FigureSpec]:
    """Every registered figure, in figure-number order."""
    return sorted(FIGURES.values(), key=lambda f: (f.number, f.name))

