"""Positions past the pretrained length: copy the learned position table, as Longformer did (Beltagy et al. 2020).

A model pretrained with 512 positions gets ``max_positions`` of them: row 512 + i starts as a copy of row i (the
table repeated), so every position keeps a trained vector and the model reads nearby tokens as it did before. Pair
it with a long-sequence kernel (``efficient.use_attention(model, "local", ...)``) and fine-tune at the new length.
RoBERTa's rows 0 … pad (below its first real position) are kept as they are and not repeated.
"""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def extend_positions(model: nn.Module, max_positions: int) -> nn.Module:
    """Grow the learned position table of ``model`` (a bertkit encoder or head model) to ``max_positions`` rows."""
    encoder = getattr(model, "base_model", model)
    config, table = encoder.config, encoder.embeddings.position_embeddings
    if table is None or encoder.embeddings.sinusoidal or config.position_embedding_type != "absolute":
        raise ValueError(f"extend_positions needs learned absolute positions; this model has "
                         f"position_embedding_type={config.position_embedding_type!r}")
    if config.attention == "linformer":
        raise ValueError("extend the positions before switching to attention='linformer' (its E, F projections "
                         "are sized by max_position_embeddings)")
    old = table.weight.shape[0]
    if not isinstance(max_positions, int) or max_positions <= old:
        raise ValueError(f"max_positions must be an integer above the current {old}, got {max_positions!r}")
    offset = config.pad_token_id + 1 if encoder.embeddings.count_positions_after_padding else 0
    rows = torch.arange(max_positions)
    source = torch.where(rows < offset, rows, offset + (rows - offset) % (old - offset))
    grown = nn.Embedding(max_positions, table.weight.shape[1], padding_idx=table.padding_idx).to(table.weight)
    grown.weight.copy_(table.weight[source.to(table.weight.device)])
    encoder.embeddings.position_embeddings = grown
    config.max_position_embeddings = max_positions
    return model

