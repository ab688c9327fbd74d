"""Linformer (Wang et al. 2020): keys and values projected along the sequence to k positions, softmax over k.

softmax(Q (E K)ᵀ / √d) (F V): E and F are learned (k × max_positions) matrices — one pair per layer, or one per head
— of which the first n columns serve a sequence of n tokens. Cost O(n·k) instead of O(n²). Padded keys and values
are zeroed before the projection, so a right-padded sequence gives what the unpadded one gives.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ...config import BertConfig
from . import keep_keys, refuse_maps


class LinformerAttention(nn.Module):
    """``E`` and ``F``: (k, max_positions), or (heads, k, max_positions) when not shared across heads."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.k = config.linformer_k
        self.max_positions = config.max_position_embeddings
        shape = (self.k, self.max_positions)
        if not config.linformer_shared:
            shape = (config.num_attention_heads, *shape)
        # Xavier-normal, as the reference code's nn.Linear(n, k) projections
        std = math.sqrt(2.0 / (self.k + self.max_positions))
        self.E = nn.Parameter(torch.randn(shape) * std)
        self.F = nn.Parameter(torch.randn(shape) * std)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
                dropout_prob: float, return_probs: bool = False) -> tuple[torch.Tensor, None]:
        refuse_maps("linformer", return_probs)
        n = k.shape[2]
        if n > self.max_positions:
            raise ValueError(f"attention='linformer' projects at most {self.max_positions} positions (E, F are "
                             f"k × max_position_embeddings); the input has {n}")
        if self.k > n:
            raise ValueError(f"attention='linformer': linformer_k={self.k} is more than the sequence length {n}; "
                             f"pad the batch to at least {self.k} tokens or choose a smaller linformer_k")
        keep = keep_keys(mask, "linformer")
        if keep is not None:
            k = k * keep[:, None, :, None].to(k.dtype)
            v = v * keep[:, None, :, None].to(v.dtype)
        keys = self.E[..., :n].to(k.dtype) @ k  # (k, n) or (heads, k, n) @ (batch, heads, n, d) → (b, h, k, d)
        values = self.F[..., :n].to(v.dtype) @ v
        probs = (q @ keys.transpose(-1, -2) / math.sqrt(q.shape[-1])).softmax(dim=-1)
        if dropout_prob > 0:
            probs = nn.functional.dropout(probs, dropout_prob)
        return probs @ values, None
