"""One transformer layer: the attention half, then the feed-forward half, each with a residual connection and a
LayerNorm — after the half (post-LN, BERT) or before it (pre-LN, ``norm_first``). A decoder layer
(``add_cross_attention``: the Transformer's decoder) has a cross-attention half between the two."""

from __future__ import annotations

import torch
from torch import nn

from ..config import BertConfig
from ..generation.kv_cache import LayerCache
from . import kernels
from .attention import Attention, ResidualOutput
from .feed_forward import GatedIntermediate, Intermediate


class Layer(nn.Module):
    """``attention`` → (``crossattention``) → ``intermediate`` → ``output``: BERT's ``encoder.layer.N`` with
    Hugging Face's names."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = Attention(config)
        self.crossattention = Attention(config) if config.add_cross_attention else None
        self.intermediate = GatedIntermediate(config) if config.gated_feed_forward else Intermediate(config)
        self.output = ResidualOutput(config, config.intermediate_size)

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The feed-forward half on the attention half's output ``x``; fused (``kernels.feed_forward``) only when
        neither half-module was replaced or hooked."""
        inner = self.output.pre_norm(x)
        if kernels.is_plain(self.intermediate, kind=Intermediate) and kernels.is_plain(
                self.output, kind=ResidualOutput) and self.intermediate.dropout is None:
            ffn = kernels.feed_forward(self.intermediate.dense, self.intermediate.intermediate_act_fn,
                                       self.output.dense, inner, self.training)
            return self.output.add_and_norm(ffn, x)
        return self.output(self.intermediate(inner), x)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, return_probs: bool = False,
                memory: torch.Tensor | None = None, memory_mask: torch.Tensor | None = None,
                cache: tuple[LayerCache, LayerCache] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``memory`` / ``memory_mask``: the encoder's output and its additive padding mask (cross-attention);
        ``cache``: this layer's (self-attention, cross-attention) caches while decoding step by step."""
        x, probs = self.attention(x, mask, return_probs, cache=cache[0] if cache else None)
        if self.crossattention is not None:
            x, _ = self.crossattention(x, memory_mask, memory=memory, cache=cache[1] if cache else None)
        return self.feed_forward(x), probs
