"""Global and sliding-window attention (ModernBERT, Longformer's local half): each query sees the keys at most
``half_window`` positions away (``|i − j| ≤ half_window``), or every key when ``half_window`` is None.

Two computations of the same numbers: short inputs form the whole (L, L) score matrix with the band masked (one SDPA
call, the kernel every block uses); long ones are cut into blocks of ``half_window`` queries, each scored only
against the 3 · half_window keys around it, so the cost grows as L · window instead of L². Keys are masked by
``keep`` (False: padding). A query that sees no real key (a padded row far past its sequence's end) gets a uniform
average: finite, never read.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import kernels


def blocked_pays(length: int, half_window: int) -> bool:
    """Whether the blocked computation is used: the sequence spans more than two windows (4 · half_window)."""
    return length > 4 * half_window


def additive(keep: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A boolean "may attend" mask as the additive one the kernels take (0 or the dtype's lowest number)."""
    return torch.zeros(keep.shape, dtype=dtype, device=keep.device).masked_fill_(~keep, torch.finfo(dtype).min)


def band(length: int, half_window: int, device: torch.device) -> torch.Tensor:
    """(length, length) bool: query i may see key j when |i − j| ≤ half_window."""
    position = torch.arange(length, device=device)
    return (position[:, None] - position[None, :]).abs() <= half_window


def local_global_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keep: torch.Tensor | None,
                           half_window: int | None, dropout: float = 0.0) -> torch.Tensor:
    """Attention of (batch, heads, L, head_size) tensors: global (``half_window`` None) or within the window;
    ``keep`` (batch, L) marks real keys (None: all)."""
    length = q.shape[-2]
    if half_window is not None and blocked_pays(length, half_window):
        return blocked_window_attention(q, k, v, keep, half_window, dropout)
    allowed = None if keep is None else keep[:, None, None, :]
    if half_window is not None:
        near = band(length, half_window, q.device)[None, None]
        allowed = near if allowed is None else allowed & near
    mask = None if allowed is None else additive(allowed, q.dtype)
    return kernels.attention(q, k, v, mask, dropout, False)[0]


def blocked_window_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keep: torch.Tensor | None,
                             half_window: int, dropout: float = 0.0) -> torch.Tensor:
    """Sliding-window attention in blocks of ``half_window`` queries, each against the keys from half_window
    before the block to half_window after it: O(L · window) time and memory."""
    batch, heads, length, size = q.shape
    block = half_window
    blocks = -(-length // block)
    tail = blocks * block - length
    span = block + 2 * half_window  # keys a block can reach

    def by_block(t: torch.Tensor, width: int, step: int, before: int, after: int) -> torch.Tensor:
        """(batch, heads, L, size) → (batch · blocks, heads, width, size): rows [i·step − before, …) of block i,
        zero-padded (one SDPA batch entry per block, the heads sharing its mask)."""
        padded = F.pad(t, (0, 0, before, after))
        return padded.unfold(2, width, step).permute(0, 2, 1, 4, 3).reshape(batch * blocks, heads, width, size)

    real = torch.ones(batch, length, dtype=torch.bool, device=q.device) if keep is None else keep.bool()
    real = F.pad(real, (half_window, half_window + tail)).unfold(1, span, block)  # (batch, blocks, span)
    offset = torch.arange(span, device=q.device)[None, :] - torch.arange(block, device=q.device)[:, None]
    near = (offset >= 0) & (offset <= 2 * half_window)  # key j of the span is within reach of query r
    allowed = (near[None, None] & real[:, :, None, :]).reshape(batch * blocks, 1, block, span)
    context = F.scaled_dot_product_attention(
        by_block(q, block, block, 0, tail), by_block(k, span, block, half_window, half_window + tail),
        by_block(v, span, block, half_window, half_window + tail), attn_mask=additive(allowed, q.dtype),
        dropout_p=dropout)
    return context.view(batch, blocks, heads, block, size).permute(0, 2, 1, 3, 4).reshape(
        batch, heads, blocks * block, size)[:, :, :length]
