"""The feed-forward layer's second projection with the GELU before it fused in, for training: the activation is
recomputed in the backward pass instead of stored (one ``intermediate_size``-wide tensor less per layer). Chosen by
``kernels.feed_forward`` only when both projections are plain ``nn.Linear`` and the activation is the exact GELU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class _GeluLinear(torch.autograd.Function):
    """``F.linear(gelu(pre), weight, bias)`` storing only ``pre``: the backward recomputes the activation (one
    elementwise pass) instead of keeping it, which saves an ``intermediate_size``-wide tensor per layer."""

    @staticmethod
    def forward(ctx, pre: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(pre, weight)
        ctx.bias_dtype = bias.dtype
        return F.linear(F.gelu(pre), weight.to(pre.dtype), bias.to(pre.dtype))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        pre, weight = ctx.saved_tensors
        grad = grad.to(pre.dtype)
        activation = F.gelu(pre)
        rows = grad.reshape(-1, grad.shape[-1])
        grad_weight = rows.t() @ activation.reshape(-1, activation.shape[-1])
        grad_bias = rows.sum(0, dtype=torch.promote_types(pre.dtype, torch.float32))
        grad_pre = torch.ops.aten.gelu_backward(grad @ weight.to(pre.dtype), pre)
        return grad_pre, grad_weight.to(weight.dtype), grad_bias.to(ctx.bias_dtype)


def gelu_linear(pre: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``F.linear(F.gelu(pre), weight, bias)`` for training, with the GELU recomputed in the backward pass; under
    autocast the GEMM runs in the autocast dtype, as ``F.linear`` would."""
    device = pre.device.type
    if torch.is_autocast_enabled(device):
        pre = pre.to(torch.get_autocast_dtype(device))
    with torch.autocast(device, enabled=False):
        return _GeluLinear.apply(pre, weight, bias)
