"""Learning-rate schedules: linear warm-up (``lr × step / warmup``), then linear decay, cosine decay or constant."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.optim.lr_scheduler import LambdaLR


def constant(progress: float) -> float:
    """Stay at the peak rate."""
    return 1.0


def linear(progress: float) -> float:
    """Fall in a straight line to zero at the last step (BERT's schedule)."""
    return max(0.0, 1.0 - progress)


def cosine(progress: float) -> float:
    """Half a cosine from the peak to zero."""
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


SCHEDULES: dict[str, Callable[[float], float]] = {"constant": constant, "linear": linear, "cosine": cosine}


def lr_multiplier(step: float, warmup_steps: int, total_steps: int, kind: str) -> float:
    """Factor on the peak rate at ``step``: ``step / warmup`` during warm-up, then the decay ``kind``."""
    if step < warmup_steps:
        return step / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    return SCHEDULES[kind]((step - warmup_steps) / decay_steps)


def build_scheduler(
    optimizer: torch.optim.Optimizer, kind: str, warmup_steps: int, total_steps: int,
    progress: Callable[[], float] | None = None,
) -> LambdaLR:
    """A ``LambdaLR`` following :func:`lr_multiplier`; call ``step()`` after every optimizer step.

    ``progress`` (the share of a time budget spent, 0 → 1) puts the schedule on the clock instead of the step count:
    the rate is the one of step ``progress × total_steps``, so warm-up and decay take the same shares of the budget
    whatever the speed, and the rate reaches its end value when the time is spent (Cramming's budget schedule)."""
    if kind not in SCHEDULES:
        raise ValueError(f"unknown schedule {kind!r}; choose one of {sorted(SCHEDULES)}")
    if warmup_steps < 0 or total_steps < 1:
        raise ValueError(f"need warmup_steps ≥ 0 and total_steps ≥ 1, got {warmup_steps} and {total_steps}")
    if progress is not None:
        return LambdaLR(optimizer, lambda _: lr_multiplier(min(1.0, progress()) * total_steps, warmup_steps,
                                                           total_steps, kind))
    return LambdaLR(optimizer, lambda step: lr_multiplier(step, warmup_steps, total_steps, kind))
