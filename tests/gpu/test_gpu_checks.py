"""The GPU checks (tests/gpu/gpu_checks.py) under pytest: each needs a CUDA device and is
skipped without one (or when it raises ``Skip``: it does not apply here, e.g. ``ddp`` with one
GPU); benchmarks/gpu_suite.py runs the same functions, each in a process group of its own
with a time limit, and prints their numbers as JSON. tests/test_gpu_suite.py runs them at
smoke sizes on the CPU."""

from __future__ import annotations

import pytest

from gpu_checks import CHECKS, FUNCS, REQUIREMENTS, Skip


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


def test_every_check_says_what_it_checks_and_has_two_limits():
    for name, what, limit, smoke_limit in CHECKS:
        assert what and FUNCS[name].__doc__, name
        assert isinstance(limit, int) and isinstance(smoke_limit, int), name
        assert 0 < smoke_limit <= limit, name
    assert all(dist and statement for dist, statement in REQUIREMENTS)
