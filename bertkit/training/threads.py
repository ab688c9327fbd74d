"""How many CPU threads a run computes on.

``threads: N`` in a config holds for the run, then torch's setting is restored (a run inside a longer process, such
as a test or a benchmark, leaves the process as it found it). ``threads: auto`` (the default of ``pretrain`` and
``finetune``) times the first training steps on 1 thread and on all of torch's, alternating, and keeps the faster:
on a machine busy with other work OpenMP's threads wait at barriers for a thread the OS has descheduled, so one
thread ran 60 tiny pretraining steps in 22 s where two took 115 s; on an idle machine two were ~10 % faster.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import torch

AUTO = "auto"
CLOCK: Callable[[], float] = time.perf_counter  # what the trial times steps with (tests put a fake clock here)
T = TypeVar("T")


def check_threads(value: Any) -> int | str | None:
    """``threads`` as a run takes it: a positive integer, ``"auto"`` or None (torch's setting); else an error."""
    if value is None or value == AUTO:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise ValueError(f"threads must be a positive integer or 'auto', got {value!r:.60}")


@contextmanager
def cpu_threads(threads: int | str | None) -> Iterator[None]:
    """Compute on ``threads`` CPU threads inside the block (None, 0 or ``auto``: torch's setting, which the trainer
    may change for ``auto``), and restore torch's setting after it."""
    before = torch.get_num_threads()
    if isinstance(threads, int) and threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class ThreadTrial:
    """``threads: auto`` for one run: after ``WARMUP`` steps on 1 thread (allocations make them slow at any count;
    on a busy machine a step on all cores can take 10× longer), steps alternate between 1 thread and ``cores`` until
    each count has ``STEPS_EACH`` timings; the count with the lower median step time is kept (the fewer threads on a
    tie). A clear case ends sooner: once every count is timed, a count whose fastest step is ``CLEAR`` times slower
    than the other's slowest loses at once. Every step trains: nothing is spent but the slower count's steps."""

    WARMUP = 2
    STEPS_EACH = 3
    CLEAR = 2.0

    def __init__(self, cores: int):
        self.candidates = [1, cores] if cores > 1 else [cores]
        self.times: dict[int, list[float]] = {count: [] for count in self.candidates}
        self.seen = 0
        self.chosen: int | None = None if len(self.candidates) > 1 else cores

    @property
    def steps(self) -> int:
        """How many steps the trial takes."""
        return self.WARMUP + self.STEPS_EACH * len(self.candidates)

    def next_count(self) -> int:
        """The thread count the next step runs on."""
        if self.chosen is not None:
            return self.chosen
        timed = self.seen - self.WARMUP
        return self.candidates[0] if timed < 0 else self.candidates[timed % len(self.candidates)]

    def run(self, step: Callable[[], T]) -> T:
        """Run one training step on the trial's thread count, timing it; returns the step's result."""
        count = self.next_count()
        if torch.get_num_threads() != count:
            torch.set_num_threads(count)
        start = CLOCK()
        result = step()
        self.record(count, CLOCK() - start)
        return result

    def record(self, count: int, seconds: float) -> None:
        """One step's time at ``count`` threads; the choice is made (and set) once every count has its steps."""
        if self.chosen is not None:
            return
        if self.seen >= self.WARMUP:
            self.times[count].append(seconds)
        self.seen += 1
        if all(len(times) >= self.STEPS_EACH for times in self.times.values()) or self.clear_case():
            medians = self.medians()
            self.chosen = min(medians, key=lambda c: (medians[c], c))
            torch.set_num_threads(self.chosen)

    def clear_case(self) -> bool:
        """Whether every count is timed and one's fastest step is ``CLEAR`` times the other's slowest."""
        if not all(self.times.values()):
            return False
        fastest = min(self.times, key=lambda c: max(self.times[c]))
        return any(min(times) >= self.CLEAR * max(self.times[fastest]) for c, times in self.times.items()
                   if c != fastest)

    def medians(self) -> dict[int, float]:
        """Each count's median step time so far."""
        return {count: statistics.median(times) for count, times in self.times.items() if times}

    def describe(self) -> str:
        """One line: what was chosen and the timings that chose it."""
        timings = ", ".join(f"{count} thread{'s' * (count > 1)} {seconds:.3g} s/step"
                            for count, seconds in self.medians().items())
        steps = min(len(times) for times in self.times.values())
        return f"threads: auto → {self.chosen} (median of {steps} step{'s' * (steps > 1)} each: {timings})"
