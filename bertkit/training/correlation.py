"""Pearson and Spearman correlation in plain numpy: fine-tuning's regression metrics and the bi-encoder's
evaluation (cosine vs score) share them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation; 0 when a side is constant."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt((x @ x) * (y @ y))
    return float(x @ y / denominator) if denominator else 0.0


def ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean of their positions)."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranked = np.empty(len(values))
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    for start, end in zip(starts, ends, strict=True):
        ranked[order[start:end]] = (start + end - 1) / 2
    return ranked


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman correlation: Pearson on average ranks."""
    return pearson(ranks(np.asarray(x, dtype=float)), ranks(np.asarray(y, dtype=float)))
