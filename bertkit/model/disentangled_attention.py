"""DeBERTa's disentangled attention (He et al. 2021) as a relative-position scheme of the attention block: besides
content to content (q_i·k_j), each pair is scored content to position (``c2p``: q_i·P^k_δ) and position to content
(``p2c``: k_j·P^q_δ), where δ = bucket(i − j) and P = the relative-position embeddings projected by the layer's own
key / query projections (``share_att_key``) or by its ``pos_key_proj`` / ``pos_query_proj``. Every term is divided by
√(d · (1 + number of position terms)): the block scales its queries by 1 / √(1 + terms) (``query_scale``) and its
kernel divides by √d as for any model.

The embeddings are one table for all layers (``encoder.rel_embeddings``, then ``encoder.LayerNorm`` with
``norm_rel_ebd: layer_norm``): ``RelativeEmbeddings``, which the encoder owns and each layer's scheme reads
(``bind``). The interface the attention block calls is ``relative_positions.py``'s: ``scores(q, k)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import BertConfig
from .dropout import Dropout


def log_bucket_positions(distance: torch.Tensor, buckets: int, max_position: int) -> torch.Tensor:
    """DeBERTa's log buckets: distances within ±buckets/2 kept, larger ones mapped logarithmically so that
    ``max_position`` lands near ±buckets (float32, as the reference computes them, so each bucket is the same)."""
    mid = buckets // 2
    sign = torch.sign(distance)
    magnitude = torch.where((distance < mid) & (distance > -mid), torch.tensor(mid - 1).type_as(distance),
                            distance.abs())
    log_position = torch.ceil(torch.log(magnitude / mid) / torch.log(torch.tensor((max_position - 1) / mid))
                              * (mid - 1)) + mid
    return torch.where(magnitude <= mid, distance.type_as(log_position), log_position * sign).long()


def relative_index(queries: int, keys: int, span: int, buckets: int, max_position: int,
                   device: torch.device) -> torch.Tensor:
    """(queries, keys) row of the relative table each pair reads: bucket(i − j) + span, clipped to the table."""
    distance = torch.arange(queries, device=device)[:, None] - torch.arange(keys, device=device)[None, :]
    if buckets > 0:
        distance = log_bucket_positions(distance, buckets, max_position)
    return (distance + span).clamp(0, 2 * span - 1)


class RelativeEmbeddings(nn.Module):
    """The relative-position table every layer reads: ``rel_embeddings`` (2 · span rows) and, with
    ``norm_rel_ebd: layer_norm``, a ``LayerNorm`` (transformers' ``encoder.rel_embeddings``, ``encoder.LayerNorm``)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.rel_embeddings = nn.Embedding(2 * config.relative_span, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) \
            if "layer_norm" in config.rel_embedding_norms else None

    def forward(self) -> torch.Tensor:
        """(2 · span, hidden): the table, normalised when the config says so."""
        table = self.rel_embeddings.weight
        return table if self.LayerNorm is None else self.LayerNorm(table)


class DisentangledPositions(nn.Module):
    """One layer's c2p / p2c score terms, from the shared table (``bind``) and the layer's projections."""

    adds_to_values = False

    def __init__(self, config: BertConfig):
        super().__init__()
        self.types = config.pos_att_type
        self.share_att_key = config.share_att_key
        self.span, self.buckets, self.max_position = config.relative_span, config.position_buckets, config.max_relative
        self.num_heads, self.head_size = config.num_attention_heads, config.head_size
        self.query_scale = 1.0 / math.sqrt(1 + len(self.types))  # with the kernel's 1/√d: 1/√(d · (1 + terms))
        self.pos_dropout = Dropout(config.hidden_dropout_prob)
        inner = config.num_attention_heads * config.head_size
        self.pos_key_proj = nn.Linear(config.hidden_size, inner) if "c2p" in self.types and not self.share_att_key \
            else None
        self.pos_query_proj = nn.Linear(config.hidden_size, inner) \
            if "p2c" in self.types and not self.share_att_key else None
        self.shared: list[nn.Module] = []  # [RelativeEmbeddings, the attention block]: not submodules of this one

    def bind(self, table: RelativeEmbeddings, attention: nn.Module) -> None:
        """Read the encoder's shared ``table`` and (``share_att_key``) ``attention``'s query / key projections,
        looked up at each call so that a replaced projection (LoRA) is the one used."""
        self.shared = [table, attention]

    def project(self, table: torch.Tensor, own: nn.Linear | None, content: str) -> torch.Tensor:
        """(heads, 2 · span, head_size): the table through this layer's position projection."""
        projection = getattr(self.shared[1], content) if self.share_att_key else own
        return projection(table).view(-1, self.num_heads, self.head_size).transpose(0, 1)

    def scores(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """(batch, heads, queries, keys): c2p + p2c terms, scaled as the content scores (``q`` arrives scaled)."""
        if not self.shared:
            raise ValueError("disentangled attention reads the encoder's relative embeddings: build it inside a "
                             "DebertaV2Model (DisentangledPositions.bind)")
        if q.shape[1] != self.num_heads:  # transformers cannot prune DeBERTa either: no pruned position layout
            raise ValueError(f"attention has {q.shape[1]} heads but its position projections {self.num_heads}: "
                             "pruned heads are not supported with disentangled attention")
        queries, keys = q.shape[-2], k.shape[-2]
        index = relative_index(queries, keys, self.span, self.buckets, self.max_position, q.device)
        table = self.pos_dropout(self.shared[0]()).to(q.dtype)
        score = q.new_zeros(())
        if "c2p" in self.types:
            by_row = q @ self.project(table, self.pos_key_proj, "key").transpose(-1, -2)
            score = score + torch.gather(by_row, -1, index.expand(*q.shape[:-2], queries, keys))
        if "p2c" in self.types:  # k_j · P^q(bucket(i − j)): gathered per key row, then turned to (queries, keys)
            by_key = k @ self.project(table, self.pos_query_proj, "query").transpose(-1, -2)
            p2c = torch.gather(by_key, -1, index.T.expand(*k.shape[:-2], keys, queries)).transpose(-1, -2)
            score = score + p2c * self.query_scale  # k is not scaled: the 1/√(1 + terms) is applied here
        return score / math.sqrt(self.head_size)
