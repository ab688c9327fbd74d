"""Logits processors: each turns (rows, vocab) scores into new scores, as transformers' processor of the same name,
applied in transformers' order (:func:`process`): repetition penalty, then — when sampling — temperature, top-k and
top-p. Filtered tokens get −∞."""

from __future__ import annotations

import torch

from .config import GenerationConfig


def repetition_penalty(tokens: torch.Tensor, scores: torch.Tensor, penalty: float) -> torch.Tensor:
    """Every token already in the row (prompt included): score / penalty if positive, score · penalty if not."""
    seen = torch.gather(scores, 1, tokens)
    seen = torch.where(seen < 0, seen * penalty, seen / penalty)
    return scores.scatter(1, tokens, seen)


def temperature(scores: torch.Tensor, value: float) -> torch.Tensor:
    """Sharpen (< 1) or flatten (> 1) the distribution."""
    return scores / value


def top_k(scores: torch.Tensor, k: int, keep: int = 1) -> torch.Tensor:
    """Keep the k best tokens (at least ``keep``); ties with the k-th are kept too, as transformers."""
    k = min(max(k, keep), scores.shape[-1])
    threshold = torch.topk(scores, k)[0][..., -1, None]
    return scores.masked_fill(scores < threshold, -float("inf"))


def top_p(scores: torch.Tensor, p: float, keep: int = 1) -> torch.Tensor:
    """Nucleus: keep the most likely tokens whose probabilities sum to at least p (at least ``keep`` of them)."""
    ordered, order = torch.sort(scores, descending=False)
    cumulative = ordered.softmax(dim=-1).cumsum(dim=-1)
    remove = cumulative <= (1 - p)  # the unlikely tail holding at most 1 - p of the mass
    remove[..., -keep:] = False
    return scores.masked_fill(remove.scatter(1, order, remove), -float("inf"))


def process(tokens: torch.Tensor, scores: torch.Tensor, config: GenerationConfig, keep: int = 1) -> torch.Tensor:
    """All the processors ``config`` asks for, in transformers' order; ``tokens`` (rows, t): the sequences so far;
    ``keep``: tokens top-k / top-p never cut below (beam sampling keeps a token besides the stop tokens)."""
    if config.repetition_penalty != 1.0:
        scores = repetition_penalty(tokens, scores, config.repetition_penalty)
    if config.do_sample:
        if config.temperature != 1.0:
            scores = temperature(scores, config.temperature)
        if config.top_k:
            scores = top_k(scores, config.top_k, keep)
        if config.top_p < 1.0:
            scores = top_p(scores, config.top_p, keep)
    return scores
