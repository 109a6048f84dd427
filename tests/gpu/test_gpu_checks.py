"""The GPU checks (tests/gpu/gpu_checks.py) under pytest: each needs a CUDA device and is
skipped without one; benchmarks/gpu_suite.py runs the same functions, each in a process of
its own with a time limit, and prints their numbers as JSON."""

from __future__ import annotations

import pytest

from gpu_checks import CHECKS, FUNCS, Skip


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.slow
@pytest.mark.skipif(not _cuda(), reason="needs a GPU")
@pytest.mark.parametrize("name", [c[0] for c in CHECKS])
def test_gpu_check(name):
    try:
        FUNCS[name]("cuda", False)
    except Skip as why:
        pytest.skip(str(why))


def test_every_listed_check_has_its_function():
    assert [c[0] for c in CHECKS] == list(FUNCS)
