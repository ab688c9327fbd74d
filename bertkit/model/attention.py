"""The attention block: Q, K, V projections, a kernel (``kernels.attention``), the output projection.

The additive ``mask`` the kernel receives carries padding (−∞ on padded keys), a decoder's causal mask and, for
``relative_bias`` models, the position bias; building it is the encoder's job, so this block is the same for every
position scheme. The same block is a decoder's cross-attention when given ``memory`` (queries from the decoder, keys
and values from the encoder's output), and decodes step by step with a ``LayerCache`` (``kv_cache.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import BertConfig
from . import kernels
from .dropout import Dropout
from .efficient import build_kernel
from .kv_cache import LayerCache


class SelfAttention(nn.Module):
    """Multi-head scaled dot-product attention over the whole sequence (``attention.self`` in BERT's names)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_size = config.head_size
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout_prob = config.attention_probs_dropout_prob
        self.prefix = None  # prefix tuning: (k, v, mask) → the same with key / value rows before them (bertkit.peft)
        self.kernel = build_kernel(config)  # None: full softmax attention (kernels.attention)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, seq, hidden) → (batch, heads, seq, head_size)."""
        batch, seq, _ = x.shape
        return x.view(batch, seq, self.num_heads, self.head_size).transpose(1, 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, return_probs: bool = False,
                memory: torch.Tensor | None = None, cache: LayerCache | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend from ``x`` to ``x`` itself, or to ``memory`` (cross-attention); ``cache`` holds earlier
        positions' keys and values while decoding."""
        if memory is None:
            q, k, v = (self.split_heads(t) for t in kernels.project_qkv(self.query, self.key, self.value, x,
                                                                          self.training))
            if cache is not None:
                k, v = cache.extend(k, v)
        else:
            q = self.split_heads(kernels.linear(self.query, x))
            if cache is not None and cache.length:  # the encoder's output does not change while decoding
                k, v = cache.key, cache.value
            else:
                k, v = self.split_heads(kernels.linear(self.key, memory)), self.split_heads(
                    kernels.linear(self.value, memory))
                if cache is not None:
                    cache.extend(k, v)
        if self.prefix is not None:
            k, v, mask = self.prefix(k, v, mask)
        dropout = self.dropout_prob if self.training else 0.0
        attend = kernels.attention if self.kernel is None else self.kernel
        context, probs = attend(q, k, v, mask, dropout, return_probs)
        batch, _, seq, _ = context.shape
        return context.transpose(1, 2).reshape(batch, seq, -1), probs


class ResidualOutput(nn.Module):
    """How each half of a layer ends: project to ``hidden_size``, dropout, add the residual; LayerNorm after that
    (post-LN, BERT) or, with ``norm_first``, before the half begins (pre-LN, GPT-2): see :meth:`pre_norm`."""

    def __init__(self, config: BertConfig, in_features: int):
        super().__init__()
        self.norm_first = config.norm_first
        self.dense = nn.Linear(in_features, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.add_and_norm(kernels.linear(self.dense, x), residual)

    def add_and_norm(self, projected: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """Dropout, residual, and (post-LN) LayerNorm: the end of the half once its input is projected."""
        out = self.dropout(projected) + residual
        return out if self.norm_first else self.LayerNorm(out)

    def pre_norm(self, x: torch.Tensor) -> torch.Tensor:
        """The half's input: LayerNorm of ``x`` in a pre-LN block, ``x`` itself in a post-LN one."""
        return self.LayerNorm(x) if self.norm_first else x


class Attention(nn.Module):
    """Self-attention (or cross-attention) and its output block (``attention.self`` and ``attention.output``)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = SelfAttention(config)
        self.output = ResidualOutput(config, config.hidden_size)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, return_probs: bool = False,
                memory: torch.Tensor | None = None, cache: LayerCache | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        context, probs = self.self(self.output.pre_norm(x), mask, return_probs, memory, cache)
        return self.output(context, x), probs
