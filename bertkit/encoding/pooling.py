"""Pooling: token vectors → one sentence vector, with every mode sentence-transformers has.

The one implementation of pooling: the encoder, fine-tuning's sentence vector and the server's strategies all call
:func:`pool`, so a mode added here is offered everywhere at once.

Modes (sentence-transformers' names): ``cls``, ``max``, ``mean``, ``mean_sqrt_len_tokens``, ``weightedmean``,
``lasttoken``. Several modes are concatenated in the order given. Padding is on the right (bertkit pads so).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of the real (unpadded) token vectors."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def mean_sqrt_len_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Sum of the real token vectors over the square root of their number (sentence-transformers' mean_sqrt_len)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9).sqrt()


def weighted_mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean weighted by position (1, 2, 3, …): later tokens count more, as in SGPT's weighted mean."""
    positions = torch.arange(1, hidden.shape[1] + 1, device=hidden.device, dtype=hidden.dtype).view(1, -1, 1)
    weights = attention_mask.unsqueeze(-1).to(hidden.dtype) * positions
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)


def max_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Element-wise maximum over the real token vectors (padding can never win)."""
    padding = ~attention_mask.bool().unsqueeze(-1)
    return hidden.masked_fill(padding, torch.finfo(hidden.dtype).min).amax(dim=1)


def cls_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The first pooled token's vector: ``[CLS]``, or the first token after an excluded prompt."""
    first = attention_mask.to(torch.int).argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), first]


def last_token_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The last real token's vector (``[SEP]`` for BERT); zeros for a row with no real token."""
    last = attention_mask.shape[1] - 1 - attention_mask.flip(1).to(torch.int).argmax(dim=1)
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    return hidden[rows, last] * attention_mask[rows, last].unsqueeze(-1).to(hidden.dtype)


POOL_FUNCTIONS = {"cls": cls_pool, "max": max_pool, "mean": mean_pool, "mean_sqrt_len_tokens": mean_sqrt_len_pool,
                  "weightedmean": weighted_mean_pool, "lasttoken": last_token_pool}


def pool(modes: Sequence[str], hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The vectors of ``modes`` (names of ``POOLING_MODES``) over ``hidden`` (batch, seq, dim), concatenated."""
    vectors = [POOL_FUNCTIONS[mode](hidden, attention_mask) for mode in modes]
    return vectors[0] if len(vectors) == 1 else torch.cat(vectors, dim=-1)


def parse_modes(pooling: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``"cls+mean"`` or ``("cls", "mean")`` → ``("cls", "mean")``; an unknown mode is a clear error."""
    modes = tuple(pooling.split("+")) if isinstance(pooling, str) else tuple(pooling)
    unknown = [m for m in modes if m not in POOLING_MODES]
    if not modes or unknown:
        raise ValueError(f"pooling must be one of {POOLING_MODES} (several joined by '+'), got {pooling!r}")
    return modes


class Pooling(torch.nn.Module):
    """sentence-transformers' Pooling: ``Pooling("mean")(hidden, attention_mask)`` → ``(batch, dim × modes)``.

    ``include_prompt=False`` leaves the first ``prompt_length`` tokens (``[CLS]`` and the prompt's) out of the pooled
    ones; the transformer still attended to them.
    """

    def __init__(self, strategy: str | tuple[str, ...] = "mean", include_prompt: bool = True):
        super().__init__()
        self.modes = parse_modes(strategy)
        self.include_prompt = include_prompt

    @property
    def strategy(self) -> str:
        """The modes as one string, several joined by '+' (``"cls+mean"``)."""
        return "+".join(self.modes)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor, prompt_length: int = 0) -> torch.Tensor:
        if prompt_length and not self.include_prompt:
            attention_mask = attention_mask.clone()
            attention_mask[:, :prompt_length] = 0
        return pool(self.modes, hidden, attention_mask)

    def extra_repr(self) -> str:
        return f"strategy={self.strategy!r}, include_prompt={self.include_prompt}"
