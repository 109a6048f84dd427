"""The networks the pipeline trains: an architecture registry (:mod:`.registry`), one module
per architecture, each registering itself when imported (adding one is one new file)."""

from __future__ import annotations

from .registry import ARCHITECTURES, Architecture, build_model, register_architecture

ARCHITECTURES.load(__name__, skip=("registry",))  # every other module registers itself

__all__ = ["ARCHITECTURES", "Architecture", "build_model", "register_architecture"]
