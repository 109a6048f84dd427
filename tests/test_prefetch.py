"""lottery_mia.imagesets.prefetch: batches made ahead by a thread, errors and early stops."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from lottery_mia.imagesets.prefetch import _prefetched


def _batches(n, fail_at=None, made=None):
    def make():
        for i in range(n):
            if i == fail_at:
                raise RuntimeError(f"batch {i} is broken")
            if made is not None:
                made.append(i)
            yield torch.full((2,), i), torch.tensor([i])
    return make


def test_batches_arrive_complete_and_in_order():
    got = [int(yb) for _, yb in _prefetched(_batches(7), "cpu", depth=2)]
    assert got == list(range(7))


def test_a_producer_error_is_raised_in_the_consumer():
    it = _prefetched(_batches(5, fail_at=3), "cpu")
    assert [int(next(it)[1]) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(RuntimeError, match="batch 3 is broken"):
        next(it)


def test_closing_early_stops_the_thread_and_it_runs_at_most_depth_ahead():
    made: list = []
    it = _prefetched(_batches(1000, made=made), "cpu", depth=2)
    next(it)
    time.sleep(0.3)
    assert len(made) <= 1 + 2 + 2  # the one consumed, the queue, one blocked in put, one made
    it.close()
    assert not any(t.name == "lottery-mia-batches" and t.is_alive()
                   for t in threading.enumerate())
    assert len(made) < 1000
