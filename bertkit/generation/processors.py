"""Logits processors: each turns (rows, vocab) scores into new scores, as transformers' processor of the same name,
applied in transformers' order (:func:`process`): repetition penalty, no repeated n-grams, the minimum length,
forced first / last tokens, then — when sampling — temperature, top-k and top-p. Filtered tokens get −∞."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import GenerationConfig


def repetition_penalty(tokens: torch.Tensor, scores: torch.Tensor, penalty: float,
                       padding: torch.Tensor | None = None) -> torch.Tensor:
    """Every token already in the row (prompt included, its ``padding`` leading positions not): score / penalty if
    positive, score · penalty if not."""
    vocab = scores.shape[-1]
    if padding is not None:  # padded positions point at an extra column, dropped afterwards (as transformers)
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        tokens = tokens.masked_fill(positions[None, :] < padding[:, None], vocab)
    scores = F.pad(scores, (0, 1))
    seen = torch.gather(scores, 1, tokens)
    seen = torch.where(seen < 0, seen * penalty, seen / penalty)
    return scores.scatter(1, tokens, seen)[:, :vocab]


def no_repeat_ngram(tokens: torch.Tensor, scores: torch.Tensor, n: int) -> torch.Tensor:
    """Forbid each token that would complete an n-gram the row already holds."""
    scores = scores.clone()
    length = tokens.shape[1]
    if length + 1 < n:
        return scores
    for row, ids in enumerate(tokens.tolist()):
        last = tuple(ids[length + 1 - n:])  # the n - 1 tokens the next one would extend
        banned = {ids[i + n - 1] for i in range(length - n + 1) if tuple(ids[i:i + n - 1]) == last}
        scores[row, list(banned)] = -float("inf")
    return scores


def force_token(scores: torch.Tensor, token: int) -> torch.Tensor:
    """Only ``token`` stays possible (score 0, every other −∞)."""
    forced = torch.full_like(scores, -float("inf"))
    forced[:, token] = 0
    return forced


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


def process(tokens: torch.Tensor, scores: torch.Tensor, config: GenerationConfig, prompt_length: int,
            keep: int = 1, padding: torch.Tensor | None = None) -> torch.Tensor:
    """All the processors ``config`` asks for, in transformers' order; ``tokens`` (rows, t): the sequences so far,
    the first ``prompt_length`` of them the prompt; ``keep``: tokens top-k / top-p never cut below (beam sampling
    keeps a token besides the stop tokens); ``padding`` (rows,): each row's left-padding length."""
    length = tokens.shape[1]
    if config.repetition_penalty != 1.0:
        scores = repetition_penalty(tokens, scores, config.repetition_penalty, padding)
    if config.no_repeat_ngram_size:
        scores = no_repeat_ngram(tokens, scores, config.no_repeat_ngram_size)
    if config.min_new_tokens and config.eos_token_id and length - prompt_length < config.min_new_tokens:
        scores = scores.clone()
        scores[:, config.eos_token_id] = -float("inf")
    if config.forced_bos_token_id is not None and length == 1:  # transformers: the sequence's second token
        scores = force_token(scores, config.forced_bos_token_id)
    if config.forced_eos_token_id is not None and length == prompt_length + config.max_new_tokens - 1:
        scores = force_token(scores, config.forced_eos_token_id)
    if config.do_sample:
        if config.temperature != 1.0:
            scores = temperature(scores, config.temperature)
        if config.top_k:
            scores = top_k(scores, config.top_k, keep)
        if config.top_p < 1.0:
            scores = top_p(scores, config.top_p, keep)
    return scores
