"""Longformer's attention (Beltagy et al. 2020): a sliding window, plus global tokens that see and are seen by all.

Each position attends to the keys at most ``local_window`` positions away and to the global positions
(``local_global_tokens``, [CLS] by default); a global position attends to every key. The window is computed in
blocks of ``local_window`` positions: a block of queries scores the keys of its previous, own and next block (3w
keys, masked to the band |i − j| ≤ w, plus the g global keys), through torch's fused SDPA — O(n·w) time and
O(n·w) memory (the band mask; the scores stay inside the fused kernel) instead of O(n²). The global rows are
g full rows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
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
        blocks = n // block

        # keys of each block of queries: its previous, own and next block, then the global positions
        def block_keys(t: torch.Tensor) -> torch.Tensor:
            extra = t[:, :, glob].unsqueeze(2).expand(-1, -1, blocks, -1, -1)
            return torch.cat([neighbour_blocks(t, block), extra], dim=3)

        positions = torch.arange(n, device=q.device)
        key_pos = torch.cat([neighbour_blocks(positions.view(1, 1, n), block, fill=-1)[0, 0],
                             glob.expand(blocks, -1)], dim=1)  # (blocks, 3·block + g)
        query_pos = positions.view(blocks, block, 1)
        in_band = (key_pos >= 0).unsqueeze(1) & ((query_pos - key_pos.unsqueeze(1)).abs() <= self.window)
        band_part = torch.arange(key_pos.shape[1], device=q.device) < 3 * block
        # a global key is taken once, from the global columns; a query always sees itself (no empty rows)
        allowed = (in_band & ~is_global[key_pos.clamp(min=0)].unsqueeze(1)) & band_part
        allowed = allowed | ~band_part
        key_keep = torch.cat([neighbour_blocks(keep[:, None, :], block, fill=False)[:, 0],
                              keep[:, glob].unsqueeze(1).expand(-1, blocks, -1)], dim=2)
        allowed = (allowed & key_keep.unsqueeze(2)) | (query_pos == key_pos.unsqueeze(1))
        # blocks join the batch dimension: the fused CPU kernel takes 4-D inputs and a mask broadcast over heads
        def by_block(t: torch.Tensor) -> torch.Tensor:  # (b, h, blocks, rows, e) → (b·blocks, h, rows, e)
            return t.transpose(1, 2).reshape(batch * blocks, heads, *t.shape[3:])

        context = F.scaled_dot_product_attention(by_block(q.view(batch, heads, blocks, block, d)),
                                                 by_block(block_keys(k)), by_block(block_keys(v)),
                                                 attn_mask=allowed.reshape(batch * blocks, 1, block, -1),
                                                 dropout_p=dropout_prob)
        context = context.view(batch, blocks, heads, block, -1).transpose(1, 2).reshape(batch, heads, n, -1)
        # the global rows: full attention over every key
        rows = F.scaled_dot_product_attention(q[:, :, glob], k, v, attn_mask=keep[:, None, None, :],
                                              dropout_p=dropout_prob)
        return context.index_copy(2, glob, rows), None
