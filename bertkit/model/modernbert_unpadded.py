"""ModernBERT on packed tokens (``unpadded.py``'s ``PackedBatch``): a batch's rows end to end, no padding rows.

Everything but attention works row by row — the embeddings and their norm, ``Wqkv``, the rotation (each row turned
by its position within its own sequence), ``Wo``, the GeGLU and the norms — so it runs on the packed rows, as
ModernBERT's own unpadded path does. Attention runs per sequence, in one of two ways:

- ``"repad"``: q, k, v scattered into a padded (batch, longest, …) block, the layer's own attention (global or
  windowed) with the padding mask, the context gathered back to packed rows;
- ``"loop"``: the layer's attention on each sequence alone, unmasked.

A layer replaced or hooked is refused (only its own forward knows what it does); projections wrapped by name (a
LoRA ``Wqkv``) are called as modules, so they run here as in the padded path.
"""

from __future__ import annotations

import torch

from . import kernels
from .modernbert import ModernBertAttention, ModernBertEncoderLayer, ModernBertModel
from .unpadded import PackedBatch

MODES = ("repad", "loop")


def unpadded_unsupported(model: ModernBertModel) -> str | None:
    """Why ``model`` cannot run unpadded (a layer or its attention replaced or hooked), or None."""
    if not isinstance(model, ModernBertModel):
        return f"{type(model).__name__} is not a ModernBertModel"
    for index, layer in enumerate(model.layers):
        if not kernels.is_plain(layer, kind=ModernBertEncoderLayer) or not kernels.is_plain(
                layer.attn, kind=ModernBertAttention):
            return f"layer {index} or its attention was replaced or is hooked; only its own forward runs it"
    return None


def check_packed(model: ModernBertModel, packed: PackedBatch) -> None:
    """Lengths within the positions, ids within the vocabulary, as the padded forward checks."""
    longest, positions = int(packed.lengths.max()), model.config.max_position_embeddings
    if longest > positions:
        raise ValueError(f"a sequence has {longest} tokens but the model has {positions} positions; truncate it")
    low, high = int(packed.input_ids.min()), int(packed.input_ids.max())
    if low < 0 or high >= model.config.vocab_size:
        raise ValueError(f"token ids must lie in [0, {model.config.vocab_size}); got {low}..{high}")


def packed_attention(attention: ModernBertAttention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     packed: PackedBatch, mode: str) -> torch.Tensor:
    """(total, heads, head_size) q, k, v → each sequence's context with itself, packed: (total, hidden)."""
    if mode == "loop":
        spans = [(int(s), int(s + n)) for s, n in zip(packed.offsets, packed.lengths, strict=True)]
        return torch.cat([attention.attend(q[s:e][None], k[s:e][None], v[s:e][None], None)[0] for s, e in spans])
    batch, width = len(packed.lengths), int(packed.lengths.max())
    rows = (packed.sequence * width + packed.positions).to(q.device)
    padded = [t.new_zeros(batch * width, *t.shape[1:]).index_copy_(0, rows, t).view(batch, width, *t.shape[1:])
              for t in (q, k, v)]
    keep = (torch.arange(width)[None] < packed.lengths[:, None]).to(q.device)
    return attention.attend(*padded, keep).flatten(0, 1).index_select(0, rows)


def unpadded_forward(model: ModernBertModel, packed: PackedBatch, output_hidden_states: bool = False,
                     attention: str = "repad") -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
    """The encoder on packed rows: the last hidden state (total, hidden) and, when asked, the embeddings' and every
    layer's (the last one after ``final_norm``, as the padded forward gives them)."""
    if attention not in MODES:
        raise ValueError(f"attention must be one of {MODES}, got {attention!r}")
    if reason := unpadded_unsupported(model):
        raise ValueError(f"this model cannot run unpadded: {reason}")
    check_packed(model, packed)
    device = model.embeddings.tok_embeddings.weight.device
    positions = packed.positions.to(device)
    x = model.embeddings(packed.input_ids.to(device))
    hidden_states = [x]
    for layer in model.layers:
        q, k, v = layer.attn.project(layer.attn_norm(x), positions)
        x = x + layer.attn.output(packed_attention(layer.attn, q, k, v, packed, attention))
        x = x + layer.mlp(layer.mlp_norm(x))
        hidden_states.append(x)
    x = model.final_norm(x)
    hidden_states[-1] = x
    return x, tuple(hidden_states) if output_hidden_states else None


__all__ = ["MODES", "unpadded_forward", "unpadded_unsupported"]
