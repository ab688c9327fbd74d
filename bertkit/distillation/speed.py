"""Side-by-side timing: each model runs the same work in alternating rounds, so that a load that comes and goes on
a shared machine slows both alike; the fastest round of each is kept."""

from __future__ import annotations

import time
from collections.abc import Callable


def fastest_rounds(runs: dict[str, Callable[[], object]], rounds: int = 3) -> dict[str, float]:
    """Seconds of the fastest of ``rounds`` calls of each function, the functions interleaved round by round."""
    if rounds < 1:
        raise ValueError(f"rounds must be ≥ 1, got {rounds}")
    best = {name: float("inf") for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - started)
    return best
