"""Unpadded inference: a batch's tokens packed into one ``(total_tokens, hidden)`` matrix, no padding rows.

Everything but attention works row by row — the embeddings' sum and LayerNorm, the projections, the feed-forward,
the residual adds and LayerNorms — so it runs on the packed rows, and a batch of mixed lengths costs its real tokens
only. Attention is the one step that mixes rows; it runs per sequence (as ModernBERT does), in one of three ways:

- ``"repad"`` (the default): Q, K and V scattered into a padded ``(batch, heads, longest, head_size)`` block, one
  SDPA call with the padding mask, the context gathered back to packed rows. Attention's share of the FLOPs is
  small for sentences, so its padding costs little, and one kernel call beats many small ones.
- ``"loop"``: one SDPA call per sequence, unmasked: no padding at all, a kernel launch per sequence and layer.
- ``"nested"``: the sequences as one jagged nested tensor through SDPA.

``bench/encode.py --systems bertkit-unpadded,bertkit-unpadded-loop,bertkit-unpadded-nested`` measures them. The
layers' submodules are called directly (``layer.attention.output``, ``layer.feed_forward``), so quantized or bf16
projections run as in the padded path; a layer whose attention was replaced or hooked, relative positions, decoders,
prefixes and efficient attention kernels are refused by :func:`unpadded_unsupported` — their padded forward is the
only one that knows them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import kernels
from .attention import Attention, SelfAttention
from .block import Layer
from .encoder import EncoderModel

ATTENTION_MODES = ("repad", "loop", "nested")


@dataclass
class PackedBatch:
    """A batch's token ids packed end to end, with where each sequence starts and how long it is."""

    input_ids: torch.Tensor  # (total,) long
    lengths: torch.Tensor  # (batch,) long, on the CPU
    offsets: torch.Tensor  # (batch,) long: the first row of each sequence
    token_types: torch.Tensor | None = None  # (total,) long segment ids; None: all 0

    @property
    def positions(self) -> torch.Tensor:
        """Each row's index within its own sequence (0, 1, … per sequence)."""
        starts = torch.repeat_interleave(self.offsets, self.lengths)
        return torch.arange(self.input_ids.shape[0]) - starts

    @property
    def sequence(self) -> torch.Tensor:
        """Each row's sequence number (batch index)."""
        return torch.repeat_interleave(torch.arange(len(self.lengths)), self.lengths)


def pack(batch: Sequence[Sequence[int]], token_types: Sequence[Sequence[int]] | None = None) -> PackedBatch:
    """Id lists (and their segment ids, for pairs) → one packed batch (every list non-empty)."""
    if not batch or any(len(ids) == 0 for ids in batch):
        raise ValueError("an unpadded batch needs at least one sequence, each with at least one token")
    lengths = torch.tensor([len(ids) for ids in batch])
    offsets = torch.cumsum(lengths, 0) - lengths
    types = None
    if token_types is not None:
        if [len(t) for t in token_types] != lengths.tolist():
            raise ValueError("token_types must give one segment id per token of each sequence")
        types = torch.tensor([t for row in token_types for t in row], dtype=torch.long)
    return PackedBatch(torch.tensor([i for ids in batch for i in ids]), lengths, offsets, types)


def unpadded_unsupported(model: EncoderModel) -> str | None:
    """Why ``model`` cannot run unpadded (its padded forward knows something the packed one does not), or None."""
    config = model.config
    if config.is_decoder or config.add_cross_attention:
        return "a decoder attends causally / across; the unpadded path is for encoders"
    if config.position_embedding_type not in ("absolute", "sinusoidal"):
        return (f"position_embedding_type={config.position_embedding_type!r} puts positions into the attention "
                "scores, which the per-sequence attention here does not add")
    for index, layer in enumerate(model.encoder.layer):
        if not kernels.is_plain(layer, kind=Layer) or not kernels.is_plain(layer.attention, kind=Attention):
            return f"layer {index} was replaced or is hooked; only its own forward runs it"
        attention = layer.attention.self
        if not kernels.is_plain(attention, kind=SelfAttention):
            return f"layer {index}'s attention was replaced or is hooked; only its own forward runs it"
        if attention.prefix is not None or attention.kernel is not None:
            return f"layer {index} has a prefix or an efficient attention kernel, which need the padded batch"
    return None


def packed_embeddings(model: EncoderModel, packed: PackedBatch) -> torch.Tensor:
    """The embedding block on the packed rows: ``(total, width)``, positions counted within each sequence."""
    device = model.embeddings.word_embeddings.weight.device
    positions = packed.positions
    if model.count_positions_after_padding:  # RoBERTa: positions start after the padding index
        positions = positions + model.embeddings.padding_idx + 1
    ids = packed.input_ids.to(device)[None]
    segments = None
    if model.config.type_vocab_size:  # no segment ids: all 0, as check_inputs gives
        segments = torch.zeros_like(ids) if packed.token_types is None else packed.token_types.to(device)[None]
    x = model.embeddings(ids, segments, position_ids=positions.to(device)[None])
    return x[0] if model.embeddings_project is None else model.embeddings_project(x[0])


def packed_self_attention(attention: SelfAttention, x: torch.Tensor, packed: PackedBatch, mode: str,
                          layout: dict) -> torch.Tensor:
    """Multi-head self-attention of every sequence with itself, packed rows in and out: ``(total, inner)``."""
    heads, size = attention.num_heads, attention.head_size
    q, k, v = (t.view(-1, heads, size) for t in kernels.project_qkv(attention.query, attention.key,
                                                                   attention.value, x, False))
    if attention.query_scale is not None:
        q = q * attention.query_scale
    if mode == "loop":
        out = torch.empty_like(q)
        for start, end in layout["spans"]:
            out[start:end] = F.scaled_dot_product_attention(
                q[start:end].transpose(0, 1), k[start:end].transpose(0, 1), v[start:end].transpose(0, 1)
            ).transpose(0, 1)
        return out.reshape(x.shape[0], -1)
    if mode == "nested":
        lengths = layout["lengths"]
        nested = [torch.nested.nested_tensor_from_jagged(t, offsets=layout["bounds"]).transpose(1, 2)
                  for t in (q, k, v)]
        with warnings.catch_warnings():  # the CPU's nested SDPA converts internally and warns of a prototype API
            warnings.simplefilter("ignore", UserWarning)
            context = F.scaled_dot_product_attention(*nested).transpose(1, 2)
        return context.values().reshape(int(lengths.sum()), -1)
    rows, batch, width = layout["rows"], len(packed.lengths), layout["width"]
    padded = [t.new_zeros(batch * width, heads, size).index_copy_(0, rows, t).view(batch, width, heads, size)
              .transpose(1, 2) for t in (q, k, v)]
    context = F.scaled_dot_product_attention(*padded, attn_mask=layout["mask"].to(q.dtype))
    return context.transpose(1, 2).reshape(batch * width, heads * size).index_select(0, rows)


def attention_layout(packed: PackedBatch, mode: str, device: torch.device, dtype: torch.dtype) -> dict:
    """What ``mode`` needs once per batch (shared by every layer): spans, jagged bounds, or the scatter rows and
    the additive padding mask."""
    if mode == "loop":
        return {"spans": [(int(s), int(s + n)) for s, n in zip(packed.offsets, packed.lengths, strict=True)]}
    if mode == "nested":
        bounds = torch.cat([packed.offsets, packed.lengths.sum()[None]]).to(device)
        return {"bounds": bounds, "lengths": packed.lengths}
    width = int(packed.lengths.max())
    rows = (packed.sequence * width + packed.positions).to(device)
    keep = torch.arange(width)[None] < packed.lengths[:, None]
    mask = torch.zeros(keep.shape, dtype=dtype).masked_fill_(~keep, torch.finfo(dtype).min)
    return {"rows": rows, "width": width, "mask": mask[:, None, None, :].to(device)}


def check_packed(model: EncoderModel, packed: PackedBatch) -> None:
    """Lengths within the model's positions and ids within its vocabulary, as the padded forward checks."""
    longest, positions = int(packed.lengths.max()), model.config.max_tokens
    if longest > positions:
        raise ValueError(f"a sequence has {longest} tokens but the model has only {positions} positions; truncate it")
    low, high = int(packed.input_ids.min()), int(packed.input_ids.max())
    if low < 0 or high >= model.config.vocab_size:
        raise ValueError(f"token ids must lie in [0, {model.config.vocab_size}); got {low}..{high}")
    types = packed.token_types
    if types is not None and types.numel() and not 0 <= int(types.min()) <= int(types.max()) < max(
            1, model.config.type_vocab_size):
        raise ValueError(f"segment ids must lie in [0, {model.config.type_vocab_size}); got "
                         f"{int(types.min())}..{int(types.max())}")


def unpadded_forward(model: EncoderModel, packed: PackedBatch, output_hidden_states: bool = False,
                     attention: str = "repad") -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
    """The encoder on packed rows: the last hidden state ``(total, hidden)`` and, when asked, every layer's
    (embeddings first, as the padded forward counts them). Inference only (no dropout, no gradients needed)."""
    if attention not in ATTENTION_MODES:
        raise ValueError(f"attention must be one of {ATTENTION_MODES}, got {attention!r}")
    if reason := unpadded_unsupported(model):
        raise ValueError(f"this model cannot run unpadded: {reason}")
    check_packed(model, packed)
    x = packed_embeddings(model, packed)
    layout = attention_layout(packed, attention, x.device, x.dtype)
    hidden_states = [x]
    for step in model.encoder.schedule:
        for index in step:
            layer = model.encoder.layer[index]
            block = layer.attention
            context = packed_self_attention(block.self, block.output.pre_norm(x), packed, attention, layout)
            x = layer.feed_forward(block.output(context, x))
            hidden_states.append(x)
    if model.encoder.LayerNorm is not None:
        x = model.encoder.LayerNorm(x)
        hidden_states[-1] = x
    return x, tuple(hidden_states) if output_hidden_states else None


__all__ = ["ATTENTION_MODES", "PackedBatch", "pack", "unpadded_forward", "unpadded_unsupported"]
