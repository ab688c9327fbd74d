"""Relative positions inside attention: the part of the scores (and of the values) that depends on i − j.

One interface for every scheme computed in the attention block itself: ``scores(q, k)`` is the additive term of
the (already scaled) scores, ``values(probs)`` the term added to the context (None when the scheme has none). The
attention block adds ``scores`` to the mask and lets its kernel do the softmax; without a scheme nothing here runs.

- ``relative_key`` / ``relative_key_query`` (Shaw et al. 2018; Huang et al. 2020): a learned vector e(i − j) per
  distance, shared by the heads, ``2 · max_position_embeddings − 1`` of them; the scores gain q_i·e(i − j)
  (and k_j·e(i − j)) before the 1/√d scaling. Weight name as transformers 4: ``attention.self.distance_embedding``.
- ``nezha`` (Wei et al. 2019): fixed sinusoidal vectors a(j − i), clipped at ±``max_relative_position``, added to
  the keys and to the values: scores q_i·(k_j + a_ij), context Σ_j p_ij (v_j + a_ij). No weights.

Both avoid the (seq, seq, head_size) tensor of gathered vectors: queries (keys) are multiplied with the table's
rows once and the products gathered per pair; NEZHA's value term sums the probabilities per distance first.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import BertConfig


class DistanceEmbedding(nn.Embedding):
    """Shaw et al.'s learned distance vectors: row ``i − j + max_position_embeddings − 1`` is e(i − j)."""

    adds_to_values = False

    def __init__(self, config: BertConfig):
        super().__init__(2 * config.max_position_embeddings - 1, config.head_size)
        self.with_keys = config.position_embedding_type == "relative_key_query"
        self.max_distance = config.max_position_embeddings - 1

    def scores(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """(batch, heads, queries, keys): (q_i·e(i − j) [+ k_j·e(i − j)]) / √d."""
        queries, keys = q.shape[-2], k.shape[-2]
        if max(queries, keys) > self.max_distance + 1:
            raise ValueError(f"input has {max(queries, keys)} tokens but the distance table covers "
                             f"{self.max_distance + 1} (max_position_embeddings)")
        # rows for distances −(keys − 1) … queries − 1; pair (i, j) reads row i − j + keys − 1
        table = self.weight[self.max_distance - keys + 1: self.max_distance + queries].to(q.dtype)
        index = (torch.arange(queries, device=q.device)[:, None] - torch.arange(keys, device=q.device)[None, :]
                 + keys - 1)
        out = torch.gather(q @ table.T, -1, index.expand(*q.shape[:-2], queries, keys))
        if self.with_keys:  # k_j·e(i − j): gathered per key row, then turned to (queries, keys)
            by_key = torch.gather(k @ table.T, -1, index.T.expand(*k.shape[:-2], keys, queries))
            out = out + by_key.transpose(-1, -2)
        return out.mul_(1.0 / math.sqrt(q.shape[-1]))

    def values(self, probs: torch.Tensor) -> None:
        """Shaw's keys-only variants add nothing to the values."""
        return None


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


# the attribute each scheme has in ``attention.self`` (transformers' names, so checkpoints map one to one)
SCHEMES = {"relative_key": ("distance_embedding", DistanceEmbedding),
           "relative_key_query": ("distance_embedding", DistanceEmbedding),
           "nezha": ("relative_positions_encoding", NezhaRelativePositions)}


def build_relative_positions(config: BertConfig) -> tuple[str, nn.Module] | None:
    """(attribute name, module) of the config's scheme computed inside attention, or None (absolute, …)."""
    if config.position_embedding_type not in SCHEMES:
        return None
    name, kind = SCHEMES[config.position_embedding_type]
    return name, kind(config)
