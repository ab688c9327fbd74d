"""The normalisation a block uses: LayerNorm (BERT, BART, GPT-2) or T5's RMS norm, chosen by ``config.norm_type``.

T5's norm only rescales: no mean is subtracted and there is no bias (Zhang & Sennrich 2019). The mean square is
taken in float32 whatever the activations' dtype, as T5's own code does, so half-precision runs stay stable.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import BertConfig


class RMSNorm(nn.Module):
    """``weight · x / √(mean(x²) + eps)`` over the last dimension (transformers' ``T5LayerNorm``)."""

    def __init__(self, width: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.variance_epsilon = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        variance = x.to(torch.float32).pow(2).mean(-1, keepdim=True)
        x = x * torch.rsqrt(variance + self.variance_epsilon)
        if self.weight.dtype in (torch.float16, torch.bfloat16):
            x = x.to(self.weight.dtype)
        return self.weight * x


def layer_norm(config: BertConfig, width: int | None = None) -> nn.Module:
    """The config's normalisation over ``width`` features (default ``hidden_size``)."""
    width = width or config.hidden_size
    if config.norm_type == "rms":
        return RMSNorm(width, eps=config.layer_norm_eps)
    return nn.LayerNorm(width, eps=config.layer_norm_eps)
