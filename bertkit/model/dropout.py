"""Dropout whose mask is cheap to draw on the CPU.

Why: torch's CPU generator (mt19937) makes one call per element for ``bernoulli_``; in a pretraining step on two
cores the dropout masks took ~19 % of the time. Here one 64-bit draw yields four 16-bit numbers, each compared with
a threshold, so the mask costs about a quarter of the generator calls. The drop probability is rounded to a multiple
of 1/65536 (0.1 → 0.100006) and the kept values are scaled by the inverse of the rounded keep probability, so the
output's expectation equals the input's exactly. Only the boolean mask is kept for the backward pass (1 byte per
element). Off the CPU, ``F.dropout`` is used unchanged; the draws come from torch's global generator, so seeding
and checkpointed RNG states make runs reproducible as with ``nn.Dropout``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LEVELS = 1 << 16  # the mask compares 16-bit draws with a threshold


def keep_mask(shape: torch.Size, p: float) -> tuple[torch.Tensor, float]:
    """A boolean mask of ``shape`` (True = keep) with drop probability ≈ ``p``, and the rounded keep probability."""
    numel = 1
    for size in shape:
        numel *= size
    words = torch.empty((numel + 3) // 4, dtype=torch.int64).random_(torch.iinfo(torch.int64).min, None)
    draws = words.view(torch.int16)[:numel].view(shape)  # uniform over [-32768, 32767]
    dropped_levels = round(p * LEVELS)
    keep = draws >= (dropped_levels - LEVELS // 2)
    return keep, 1.0 - dropped_levels / LEVELS


class _MaskedScale(torch.autograd.Function):
    """``x * mask / keep_probability``, saving only the boolean mask for the backward pass."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return x.mul(keep).mul_(scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (keep,) = ctx.saved_tensors
        return grad.mul(keep).mul_(ctx.scale), None, None


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Inverted dropout with a fast CPU mask (see the module doc); identity when not training or ``p == 0``."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0:
        return F.dropout(x, p, training=True)
    keep, keep_probability = keep_mask(x.shape, p)
    return _MaskedScale.apply(x, keep, 1.0 / keep_probability)


def drop_unscaled(x: torch.Tensor, p: float) -> tuple[torch.Tensor, float]:
    """``x`` with each element zeroed with probability ≈ ``p`` but the rest *not* scaled up, and the keep
    probability: before a linear map, the inverse scale can go on the map's smaller weight instead (one pass over
    ``x`` fewer, forward and backward). Only the boolean mask is kept for the backward pass."""
    if x.device.type != "cpu":
        return torch.where(torch.rand_like(x) >= p, x, 0.0), 1.0 - p
    keep, keep_probability = keep_mask(x.shape, p)
    return torch.where(keep, x, 0.0), keep_probability


class _DropoutMatmul(torch.autograd.Function):
    """``dropout(probs) @ v`` saving ``probs`` (kept anyway by the softmax before it) and the boolean mask, not the
    dropped-out copy: attention's backward rebuilds that copy, one elementwise product, instead of storing it."""

    @staticmethod
    def forward(ctx, probs: torch.Tensor, v: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(probs, v, keep)
        ctx.scale = scale
        return probs.mul(keep).mul_(scale) @ v

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        probs, v, keep = ctx.saved_tensors
        grad_v = probs.mul(keep).mul_(ctx.scale).transpose(-1, -2) @ grad
        grad_probs = (grad @ v.transpose(-1, -2)).mul_(keep).mul_(ctx.scale)
        return grad_probs, grad_v, None, None


def dropout_matmul(probs: torch.Tensor, v: torch.Tensor, p: float) -> torch.Tensor:
    """``dropout(probs, p) @ v`` (attention's last step, in training) holding one less probability-sized tensor."""
    if p == 0.0 or probs.device.type != "cpu" or p >= 1.0:
        return dropout(probs, p) @ v
    keep, keep_probability = keep_mask(probs.shape, p)
    return _DropoutMatmul.apply(probs, v.to(probs.dtype), keep, 1.0 / keep_probability)


class Dropout(nn.Dropout):
    """``nn.Dropout`` (same arguments, no parameters) drawing its CPU mask with :func:`dropout`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)
