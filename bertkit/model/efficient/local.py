"""Longformer's attention (Beltagy et al. 2020): a sliding window, plus global tokens that see and are seen by all.

Each position attends to the keys at most ``local_window`` positions away and to the global positions
(``local_global_tokens``, [CLS] by default); a global position attends to every key. The window is computed in
blocks of ``local_window`` positions: a block of queries scores the keys of its previous, own and next block (3w
keys, masked to the band |i − j| ≤ w) — O(n·w) time and memory instead of O(n²). The global rows are g full rows.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ...config import BertConfig
from . import keep_keys, refuse_maps


def neighbour_blocks(x: torch.Tensor, block: int, fill: float = 0.0) -> torch.Tensor:
    """(batch, heads, n[, d]) → (batch, heads, n/block, 3·block[, d]): each block's previous, own and next block."""
    padding = [0, 0] * (x.dim() - 3) + [block, block]
    padded = nn.functional.pad(x, padding, value=fill)
    blocks = padded.view(*x.shape[:2], -1, block, *x.shape[3:])
    return torch.cat([blocks[:, :, :-2], blocks[:, :, 1:-1], blocks[:, :, 2:]], dim=3)


class LocalGlobalAttention(nn.Module):
    """Band attention of half-width ``local_window`` plus full rows and columns for the global positions."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.window = config.local_window
        self.global_tokens = tuple(config.local_global_tokens)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
                dropout_prob: float, return_probs: bool = False) -> tuple[torch.Tensor, None]:
        refuse_maps("local", return_probs)
        batch, heads, n, d = q.shape
        block = min(self.window, n)
        if n % block:
            raise ValueError(f"attention='local': the sequence length {n} is not a multiple of local_window="
                             f"{self.window}; pad the batch to a multiple of {self.window} tokens (tokenizer: "
                             f"padding='max_length', max_length=a multiple of {self.window})")
        keep = keep_keys(mask, "local")
        if keep is None:
            keep = torch.ones(batch, n, dtype=torch.bool, device=q.device)
        glob = torch.tensor([p for p in self.global_tokens if p < n], dtype=torch.long, device=q.device)
        is_global = torch.zeros(n, dtype=torch.bool, device=q.device)
        is_global[glob] = True
        scale, lowest = 1.0 / math.sqrt(d), torch.finfo(q.dtype).min

        # the band: each block of queries against its three neighbouring blocks of keys
        key_pos = neighbour_blocks(torch.arange(n, device=q.device).view(1, 1, n), block, fill=-1)[0, 0]
        query_pos = torch.arange(n, device=q.device).view(-1, block, 1)
        band = (key_pos >= 0).unsqueeze(1) & ((query_pos - key_pos.unsqueeze(1)).abs() <= self.window)
        band = band & ~is_global[key_pos.clamp(min=0)].unsqueeze(1)  # global keys are added once, below
        band = band & neighbour_blocks(keep[:, None, :], block, fill=False)[:, 0, :, None, :].unsqueeze(1)
        scores = (q.view(batch, heads, -1, block, d) @ neighbour_blocks(k, block).transpose(-1, -2)) * scale
        scores = scores.masked_fill(~band, lowest)  # (b, h, blocks, block, 3·block)
        # every query also scores the global keys
        global_scores = (q @ k[:, :, glob].transpose(-1, -2) * scale).masked_fill(~keep[:, None, None, glob],
                                                                                 lowest)
        probs = torch.cat([scores, global_scores.view(batch, heads, n // block, block, len(glob))], dim=-1).softmax(-1)
        if dropout_prob > 0:
            probs = nn.functional.dropout(probs, dropout_prob)
        context = (probs[..., :3 * block] @ neighbour_blocks(v, block)).view(batch, heads, n, -1)
        context = context + (probs[..., 3 * block:].reshape(batch, heads, n, -1) @ v[:, :, glob])
        # the global rows: full attention over every key
        rows = (q[:, :, glob] @ k.transpose(-1, -2) * scale).masked_fill(~keep[:, None, None, :], lowest)
        rows = rows.softmax(dim=-1)
        if dropout_prob > 0:
            rows = nn.functional.dropout(rows, dropout_prob)
        return context.index_copy(2, glob, rows @ v), None
