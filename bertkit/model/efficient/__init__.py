"""Efficient attention kernels, chosen by ``config.attention``: each replaces the n × n softmax of
``kernels.attention`` inside the same ``SelfAttention`` block, so projections, names and checkpoints stay BERT's.

- ``linformer``: keys and values projected along the sequence to k positions by learned E, F — O(n·k).
- ``performer``: FAVOR+ positive orthogonal random features; (φ(K)ᵀV) first, never the n × n matrix — O(n·m).
- ``lsh``: Reformer's shared-QK attention inside hash buckets, sorted and chunked — O(n·chunk).
- ``local``: Longformer's sliding window plus global tokens — O(n·window).

Every kernel is called like ``kernels.attention``: ``(q, k, v, mask, dropout_prob, return_probs)`` on
(batch, heads, seq, head_size) tensors, and returns ``(context, None)``: none of them forms the attention maps.
"""

from __future__ import annotations

import torch
from torch import nn

from ...config import BertConfig


def build_kernel(config: BertConfig) -> nn.Module | None:
    """The attention kernel module ``config.attention`` names; None for ``full`` (today's exact path)."""
    if config.attention == "full":
        return None
    from .linformer import LinformerAttention
    from .local import LocalGlobalAttention
    from .lsh import LSHAttention
    from .performer import PerformerAttention

    kinds = {"linformer": LinformerAttention, "performer": PerformerAttention, "lsh": LSHAttention,
             "local": LocalGlobalAttention}
    return kinds[config.attention](config)


def use_attention(model: nn.Module, attention: str, **sizes: int | bool | list[int]) -> nn.Module:
    """Switch every attention block of a (loaded) model to another kernel, e.g. ``use_attention(m, "local",
    local_window=256)``; the config records it, so ``save_pretrained`` writes it. Linformer's E, F start fresh."""
    encoder = getattr(model, "base_model", model)
    config = type(encoder.config)(**encoder.config.fields() | sizes | {"attention": attention})
    for module in encoder.modules():
        if hasattr(module, "use_kernel"):  # a SelfAttention block
            kernel = build_kernel(config)
            reference = next(module.parameters())
            module.use_kernel(kernel.to(reference.device) if kernel is not None else None)
    for name in ("attention", *sizes):
        setattr(encoder.config, name, getattr(config, name))
    return model


def keep_keys(mask: torch.Tensor | None, name: str) -> torch.Tensor | None:
    """(batch, seq) booleans, True for real keys, from the encoder's additive padding mask; None: keep all.

    An efficient kernel never forms the (seq × seq) scores, so it can take only a padding mask, not a bias per
    query (T5's relative bias is refused when the config is built).
    """
    if mask is None:
        return None
    if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[2] != 1:
        raise ValueError(f"attention={name!r} takes only a (batch, 1, 1, seq) padding mask, got shape "
                         f"{tuple(mask.shape)}")
    return mask[:, 0, 0, :] > torch.finfo(mask.dtype).min / 2


def refuse_maps(name: str, return_probs: bool) -> None:
    """The attention maps exist only for full attention: asking for them is an error, not a silent None."""
    if return_probs:
        raise ValueError(f"attention={name!r} never forms the attention maps; output_attentions needs "
                         "attention='full'")
