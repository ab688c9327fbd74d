"""The attention block: Q, K, V projections, a kernel (``kernels.attention``), the output projection.

The additive ``mask`` the kernel receives carries padding (−∞ on padded keys), a decoder's causal mask and, for
``relative_bias`` models, the position bias; building it is the encoder's job. Schemes whose position part depends
on the queries, keys or values themselves (``relative_key``, ``relative_key_query``, ``nezha``: see
``relative_positions.py``) are one module here that adds its score term to that mask (and its value term to the
context); without one the kernel runs exactly as for absolute positions. Rotary positions (``rotary.py``) rotate
the new positions' queries and keys (after the cached ones) before the kernel, and add nothing to the scores.

The same block is a decoder's cross-attention when given ``memory`` (queries from the decoder, keys and values from
the encoder's output), and decodes step by step with a ``LayerCache`` (``generation/kv_cache.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import BertConfig
from ..generation.kv_cache import LayerCache
from . import kernels
from .disentangled_attention import DisentangledPositions
from .dropout import Dropout
from .dropout import dropout as drop
from .efficient import build_kernel
from .norms import layer_norm
from .relative_positions import build_relative_positions
from .rotary import RotaryPositions


class SelfAttention(nn.Module):
    """Multi-head scaled dot-product attention over the whole sequence (``attention.self`` in BERT's names)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_size = config.head_size
        inner = config.num_attention_heads * config.head_size  # hidden_size, except T5's own d_kv
        self.query = nn.Linear(config.hidden_size, inner, bias=config.use_bias)
        self.key = nn.Linear(config.hidden_size, inner, bias=config.use_bias)
        self.value = nn.Linear(config.hidden_size, inner, bias=config.use_bias)
        # T5 scores QKᵀ unscaled: the kernel's 1/√d is undone on the queries (None: nothing to do, BERT's path)
        self.query_scale = None if config.scale_attention else config.head_size ** 0.5
        self.dropout_prob = config.attention_probs_dropout_prob
        # the two slots other packages fill, through use_prefix / use_kernel
        self.prefix: nn.Module | None = None  # prefix tuning: (k, v, mask) → the same with rows before them
        self.kernel: nn.Module | None = build_kernel(config)  # None: full softmax attention (kernels.attention)
        scheme = build_relative_positions(config)  # positions computed from q, k (and v): transformers' name
        if getattr(config, "relative_attention", False):  # DeBERTa's c2p / p2c terms (disentangled_attention.py)
            scheme = ("disentangled", DisentangledPositions(config))
            self.query_scale = scheme[1].query_scale  # scores / √(d · (1 + terms)): the kernel divides by √d
        self.relative_positions = scheme[0] if scheme is not None else None
        self.position_type = "disentangled" if self.relative_positions == "disentangled" else \
            config.position_embedding_type  # what messages name
        if scheme is not None:
            setattr(self, *scheme)
        # rotary: q and k turned by their positions before the kernel (self-attention only, never cross-attention)
        self.rotary = RotaryPositions(config) if config.position_embedding_type == "rotary" else None

    def use_prefix(self, prefix: nn.Module | None) -> None:
        """Prefix tuning's hook (``bertkit.peft.prefix``): ``prefix(k, v, mask)`` puts its key / value rows before
        the sequence's; None removes it."""
        if prefix is not None and self.relative_positions is not None:
            raise ValueError("prefix tuning adds keys without a position; relative positions "
                             f"({self.position_type}) cannot score them")
        self.prefix = prefix

    def use_kernel(self, kernel: nn.Module | None) -> None:
        """Attend with ``kernel`` (an efficient attention of ``model/efficient``, called like
        ``kernels.attention``) instead of the full softmax; None: the full softmax."""
        if kernel is not None and self.relative_positions is not None:
            raise ValueError(f"an efficient attention kernel cannot add relative positions "
                             f"({self.position_type}) to scores it never forms")
        if kernel is not None and self.rotary is not None:
            raise ValueError("rotary positions are built for the full-attention kernel; an efficient attention "
                             "kernel is not supported with position_embedding_type 'rotary'")
        self.kernel = kernel

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
            if self.rotary is not None:  # cached keys are stored rotated: new positions start after them
                q, k, v = self.rotary(q, k, v, cache.length if cache is not None else 0)
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
        if self.query_scale is not None:
            q = q * self.query_scale
        if self.prefix is not None:
            k, v, mask = self.prefix(k, v, mask)
        dropout = self.dropout_prob if self.training else 0.0
        if self.relative_positions is not None:
            context, probs = self.attend_with_positions(q, k, v, mask, dropout, return_probs)
        else:
            attend = kernels.attention if self.kernel is None else self.kernel
            context, probs = attend(q, k, v, mask, dropout, return_probs)
        batch, _, seq, _ = context.shape
        context = context.transpose(1, 2)
        if kernels.exporting():  # the exporter decomposes SDPA into ops whose strides differ from the fused
            context = context.clone(memory_format=torch.contiguous_format)  # kernel's: a traced view would fail
        return context.reshape(batch, seq, -1), probs


    def attend_with_positions(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
                              dropout: float, return_probs: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attention with the relative scheme's score term in the mask (the kernel does the softmax) and, for a
        scheme with a value term (NEZHA), that term added with the same dropped-out probabilities."""
        scheme = getattr(self, self.relative_positions)
        bias = scheme.scores(q, k)
        mask = bias if mask is None else (bias + mask).clamp(min=torch.finfo(bias.dtype).min)
        if not scheme.adds_to_values:
            return kernels.attention(q, k, v, mask, dropout, return_probs)
        probs = kernels.attention_probs(q, k, mask)
        dropped = drop(probs, dropout, dropout > 0)
        return dropped @ v + scheme.values(dropped), probs if return_probs else None


class ResidualOutput(nn.Module):
    """How each half of a layer ends: project to ``hidden_size``, dropout, add the residual; LayerNorm after that
    (post-LN, BERT) or, with ``norm_first``, before the half begins (pre-LN, GPT-2): see :meth:`pre_norm`."""

    def __init__(self, config: BertConfig, in_features: int):
        super().__init__()
        self.norm_first = config.norm_first
        self.dense = nn.Linear(in_features, config.hidden_size, bias=config.use_bias)
        self.LayerNorm = layer_norm(config)
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
        self.output = ResidualOutput(config, config.num_attention_heads * config.head_size)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, return_probs: bool = False,
                memory: torch.Tensor | None = None, cache: LayerCache | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        context, probs = self.self(self.output.pre_norm(x), mask, return_probs, memory, cache)
        return self.output(context, x), probs
