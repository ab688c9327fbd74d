"""Shaw et al. (2018) relative positions, as transformers 4's BERT computed them (``relative_key``,
``relative_key_query``; Huang et al. 2020): a learned vector e(i − j) per distance, shared by the heads,
``2 · max_position_embeddings − 1`` of them; the scores gain q_i·e(i − j) (and k_j·e(i − j)) before the 1/√d scaling.
Weight name as transformers 4: ``attention.self.distance_embedding``. The interface: ``relative_positions.py``.

Queries (keys) are multiplied with the table's rows once and the products gathered per pair, instead of building the
(seq, seq, head_size) tensor of gathered vectors.
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
