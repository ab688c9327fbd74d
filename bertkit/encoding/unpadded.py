"""Pooling from packed rows: the sentence vectors of an unpadded batch (``bertkit.model.unpadded``), every mode of
pooling.py, without padding the hidden states back.

Each mode is a segment reduction over the rows of one sequence: sums and weighted sums with ``index_add``, maxima
with ``scatter_reduce``, the first / last token by index. ``skip`` leaves each sequence's first rows out of the
pool (``[CLS]`` and an excluded prompt), as ``Pooling(include_prompt=False)`` does on a padded batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..model.unpadded import PackedBatch


def segment_sum(rows: torch.Tensor, weights: torch.Tensor, packed: PackedBatch) -> torch.Tensor:
    """Per sequence, the sum of its rows times their weights: ``(batch, dim)``."""
    sequence = packed.sequence.to(rows.device)
    out = rows.new_zeros(len(packed.lengths), rows.shape[-1])
    return out.index_add_(0, sequence, rows * weights[:, None])


def packed_pool(modes: Sequence[str], hidden: torch.Tensor, packed: PackedBatch, skip: int = 0) -> torch.Tensor:
    """The vectors of ``modes`` over packed ``hidden`` (total, dim), concatenated: what ``pooling.pool`` gives on
    the same batch padded, with the first ``skip`` rows of each sequence masked out."""
    positions = packed.positions.to(hidden.device)
    keep = (positions >= skip).to(hidden.dtype)
    count = segment_sum(keep[:, None], torch.ones_like(keep), packed)  # (batch, 1) rows pooled per sequence
    offsets, lengths = packed.offsets.to(hidden.device), packed.lengths.to(hidden.device)
    vectors = []
    for mode in modes:
        if mode in ("mean", "mean_sqrt_len_tokens"):
            total = segment_sum(hidden, keep, packed)
            scale = count.clamp(min=1e-9)
            vectors.append(total / (scale if mode == "mean" else scale.sqrt()))
        elif mode == "weightedmean":  # weights 1, 2, 3, … by position, as on the padded batch
            weights = keep * (positions + 1).to(hidden.dtype)
            vectors.append(segment_sum(hidden, weights, packed) / segment_sum(
                weights[:, None], torch.ones_like(weights), packed).clamp(min=1e-9))
        elif mode == "max":
            masked = hidden.masked_fill(keep[:, None] == 0, torch.finfo(hidden.dtype).min)
            index = packed.sequence.to(hidden.device)[:, None].expand_as(hidden)
            out = hidden.new_full((len(packed.lengths), hidden.shape[-1]), torch.finfo(hidden.dtype).min)
            vectors.append(out.scatter_reduce_(0, index, masked, "amax"))
        elif mode == "cls":  # the first pooled row; a sequence with none pooled gives its first row, as argmax does
            first = torch.where(lengths > skip, offsets + skip, offsets)
            vectors.append(hidden[first])
        elif mode == "lasttoken":  # the last row, zeros for a sequence with none pooled
            vectors.append(hidden[offsets + lengths - 1] * (lengths > skip)[:, None].to(hidden.dtype))
        else:
            raise ValueError(f"unknown pooling mode {mode!r}")
    return vectors[0] if len(vectors) == 1 else torch.cat(vectors, dim=-1)


def repad_rows(rows: torch.Tensor, packed: PackedBatch, width: int) -> torch.Tensor:
    """Packed rows ``(total, dim)`` back into a zero-padded batch ``(batch, width, dim)``."""
    out = rows.new_zeros(len(packed.lengths), width, rows.shape[-1])
    out[packed.sequence.to(rows.device), packed.positions.to(rows.device)] = rows
    return out


def first_rows(hidden: torch.Tensor, packed: PackedBatch) -> torch.Tensor:
    """Each sequence's first row (``[CLS]``), shaped ``(batch, 1, dim)`` for the model's pooler."""
    return hidden[packed.offsets.to(hidden.device)][:, None]


__all__ = ["first_rows", "packed_pool", "repad_rows"]
