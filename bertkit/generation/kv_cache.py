"""The key / value cache of step-by-step decoding: each layer keeps the keys and values it computed for earlier
positions, so the next token's forward pass projects only the new token (O(n) per step instead of O(n²)).

A decoder layer has two entries: its self-attention's, which grows by the new positions every step, and (in an
encoder-decoder) its cross-attention's, the projection of the encoder's output — computed at the first step, then
reused unchanged. Beam search reorders the batch rows of every entry after each step (:meth:`KVCache.reorder`).
"""

from __future__ import annotations

import torch


class LayerCache:
    """One attention's cached keys and values, (batch, heads, positions, head_size) each; empty until first used."""

    def __init__(self) -> None:
        self.key: torch.Tensor | None = None
        self.value: torch.Tensor | None = None

    @property
    def length(self) -> int:
        """Positions cached so far."""
        return 0 if self.key is None else self.key.shape[2]

    def extend(self, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append the new positions' keys and values; returns all of them (past + new)."""
        if self.key is not None:
            key, value = torch.cat([self.key, key], dim=2), torch.cat([self.value, value], dim=2)
        self.key, self.value = key, value
        return key, value

    def reorder(self, rows: torch.Tensor) -> None:
        """Keep batch rows ``rows`` (in that order): beam search's surviving hypotheses."""
        if self.key is not None:
            self.key, self.value = self.key.index_select(0, rows), self.value.index_select(0, rows)


class KVCache:
    """Every decoder layer's self-attention cache (``self_attention[i]``) and cross-attention cache
    (``cross_attention[i]``), indexed by the layer's position in the stack."""

    def __init__(self, num_layers: int):
        self.self_attention = [LayerCache() for _ in range(num_layers)]
        self.cross_attention = [LayerCache() for _ in range(num_layers)]

    @property
    def length(self) -> int:
        """Positions already decoded (the offset of the next position)."""
        return self.self_attention[0].length if self.self_attention else 0

    def reorder(self, rows: torch.Tensor) -> None:
        """Keep batch rows ``rows`` of every entry (beam search); the cross-attention entries too, since beams of
        different sources may be reordered across sources."""
        for entry in self.self_attention + self.cross_attention:
            entry.reorder(rows)
