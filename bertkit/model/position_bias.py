"""T5's relative position bias: a learned scalar per head and per distance bucket, added to the attention scores.

Instead of adding a position vector to each token, every (query, key) pair gets a bias that depends only on how far
apart the two are. Distances are grouped into buckets: the first half of the buckets (per direction) hold one
distance each (0, 1, 2, …), the rest grow logarithmically up to ``max_distance``, beyond which all distances share
the last bucket — near neighbours are told apart precisely, far ones roughly.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import BertConfig


def relative_position_bucket(distance: torch.Tensor, bidirectional: bool, num_buckets: int, max_distance: int
                             ) -> torch.Tensor:
    """Bucket index of each ``key_position − query_position`` (a long tensor), in [0, num_buckets)."""
    offset = torch.zeros_like(distance)
    if bidirectional:  # half of the buckets for keys after the query, half for keys before it (or at it)
        num_buckets //= 2
        offset = (distance > 0).long() * num_buckets
        distance = distance.abs()
    else:  # causal: only keys at or before the query exist
        distance = (-distance).clamp(min=0)
    exact = num_buckets // 2
    # log-spaced buckets from `exact` up to max_distance; clamp(min=1) only keeps log() finite where `exact` applies
    log_ratio = torch.log(distance.clamp(min=1).float() / exact) / math.log(max_distance / exact)
    far = (exact + (log_ratio * (num_buckets - exact)).long()).clamp(max=num_buckets - 1)
    return offset + torch.where(distance < exact, distance, far)


class RelativePositionBias(nn.Module):
    """(1, heads, queries, keys) additive scores from a (num_buckets, heads) table."""

    def __init__(self, config: BertConfig, bidirectional: bool = True):
        super().__init__()
        self.bidirectional = bidirectional
        self.num_buckets = config.relative_attention_num_buckets
        self.max_distance = config.relative_attention_max_distance
        self.relative_attention_bias = nn.Embedding(self.num_buckets, config.num_attention_heads)

    def forward(self, query_length: int, key_length: int, past: int = 0) -> torch.Tensor:
        """The bias of queries at positions ``past`` … ``past + query_length`` (a decoder's cached steps come
        first) against keys 0 … ``key_length``."""
        device = self.relative_attention_bias.weight.device
        queries = torch.arange(past, past + query_length, device=device)[:, None]
        keys = torch.arange(key_length, device=device)[None, :]
        buckets = relative_position_bucket(keys - queries, self.bidirectional, self.num_buckets, self.max_distance)
        return self.relative_attention_bias(buckets).permute(2, 0, 1).unsqueeze(0)
