"""How many CPU threads a run computes on: ``threads: N`` in a config holds for the run, then torch's setting is
restored (a run inside a longer process, such as a test or a benchmark, leaves the process as it found it)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def cpu_threads(threads: int | None) -> Iterator[None]:
    """Compute on ``threads`` CPU threads inside the block (None or 0: leave torch's setting alone)."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
