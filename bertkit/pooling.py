"""Pooling: token vectors → one sentence vector (mean, max, [CLS], or the pooler's output)."""

from __future__ import annotations

import torch

TOKEN_POOLING = ("mean", "max", "cls")
# "pooled" is BERT's own pooler (dense + tanh on [CLS]): the model computes it, so the encoder takes it from there.
POOLING_STRATEGIES = (*TOKEN_POOLING, "pooled")


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of the real (unpadded) token vectors."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def max_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Element-wise maximum over the real token vectors (padding can never win)."""
    padding = ~attention_mask.bool().unsqueeze(-1)
    return hidden.masked_fill(padding, torch.finfo(hidden.dtype).min).amax(dim=1)


def cls_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The ``[CLS]`` token's vector."""
    return hidden[:, 0]


class Pooling(torch.nn.Module):
    """A small module, as in sentence-transformers: ``Pooling("mean")(hidden, attention_mask)``."""

    def __init__(self, strategy: str = "mean"):
        super().__init__()
        if strategy not in TOKEN_POOLING:
            raise ValueError(f"pooling must be one of {TOKEN_POOLING}, got {strategy!r}")
        self.strategy = strategy

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.strategy == "mean":
            return mean_pool(hidden, attention_mask)
        if self.strategy == "max":
            return max_pool(hidden, attention_mask)
        return cls_pool(hidden, attention_mask)

    def extra_repr(self) -> str:
        return f"strategy={self.strategy!r}"
