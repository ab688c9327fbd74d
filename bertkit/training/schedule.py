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


def lr_multiplier(step: int, warmup_steps: int, total_steps: int, kind: str) -> float:
    """Factor on the peak rate at ``step``: ``step / warmup`` during warm-up, then the decay ``kind``."""
    if step < warmup_steps:
        return step / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    return SCHEDULES[kind]((step - warmup_steps) / decay_steps)


def build_scheduler(
    optimizer: torch.optim.Optimizer, kind: str, warmup_steps: int, total_steps: int
) -> LambdaLR:
    """A ``LambdaLR`` following :func:`lr_multiplier`; call ``step()`` after every optimizer step."""
    if kind not in SCHEDULES:
        raise ValueError(f"unknown schedule {kind!r}; choose one of {sorted(SCHEDULES)}")
    if warmup_steps < 0 or total_steps < 1:
        raise ValueError(f"need warmup_steps ≥ 0 and total_steps ≥ 1, got {warmup_steps} and {total_steps}")
    return LambdaLR(optimizer, lambda step: lr_multiplier(step, warmup_steps, total_steps, kind))
