"""NEZHA's functional relative positions (Wei et al. 2019): fixed sinusoidal vectors a(j − i), clipped at
±``max_relative_position``, added to the keys and to the values: scores q_i·(k_j + a_ij), context Σ_j p_ij (v_j + a_ij).
No weights. The interface: ``relative_positions.py``.

The key term multiplies the queries with the table's 2·max + 1 rows once and gathers per pair; the value term sums
the probabilities per distance first, then multiplies with the table (no (seq, seq, head_size) tensor).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import BertConfig


def nezha_table(max_relative_position: int, width: int) -> torch.Tensor:
    """(2·max + 1, width) float64: row r is NEZHA's sinusoid of r (sin on even columns, cos on odd ones); pair
    (i, j) reads row clip(j − i, ±max) + max, as NEZHA's and transformers 4's code index it."""
    position = torch.arange(2 * max_relative_position + 1, dtype=torch.float64)[:, None]
    frequency = torch.exp(torch.arange(0, width, 2, dtype=torch.float64) * (-math.log(10000.0) / width))
    table = torch.zeros(2 * max_relative_position + 1, width, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)[:, : width // 2]
    return table


class NezhaRelativePositions(nn.Module):
    """NEZHA's functional relative positions: a fixed table (a buffer, not saved), added to keys and values."""

    adds_to_values = True

    def __init__(self, config: BertConfig):
        super().__init__()
        self.max_relative_position = config.max_relative_position
        self.register_buffer("table", nezha_table(config.max_relative_position, config.head_size).float(),
                             persistent=False)

    def index(self, queries: int, keys: int, device: torch.device) -> torch.Tensor:
        """(queries, keys) row of each pair: clip(j − i) + max."""
        distance = torch.arange(keys, device=device)[None, :] - torch.arange(queries, device=device)[:, None]
        return distance.clamp(-self.max_relative_position, self.max_relative_position) + self.max_relative_position

    def scores(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """(batch, heads, queries, keys): q_i·a(j − i) / √d."""
        index = self.index(q.shape[-2], k.shape[-2], q.device)
        out = torch.gather(q @ self.table.to(q.dtype).T, -1, index.expand(*q.shape[:-2], *index.shape))
        return out.mul_(1.0 / math.sqrt(q.shape[-1]))

    def values(self, probs: torch.Tensor) -> torch.Tensor:
        """(batch, heads, queries, head_size): Σ_j p_ij a(j − i), the probabilities summed per distance first."""
        index = self.index(probs.shape[-2], probs.shape[-1], probs.device)
        per_distance = probs.new_zeros(*probs.shape[:-1], self.table.shape[0])
        per_distance.scatter_add_(-1, index.expand(probs.shape), probs)
        return per_distance @ self.table.to(probs.dtype)
