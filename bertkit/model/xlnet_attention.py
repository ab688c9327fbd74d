"""Transformer-XL's relative attention as XLNet uses it (Dai et al. 2019; Yang et al. 2019), batch first.

A query at position i scores a key at j with three terms, each a dot product with the query plus a learned bias:
content ``(q_i + u)·k_j`` (``r_w_bias``), position ``(q_i + v)·W_r R_{i-j}`` (``r_r_bias``, R the sinusoid of the
distance) and segment ``(q_i + s)·seg_embed[same or not]`` (``r_s_bias``). The position term is computed against
every distance at once and realigned by the rel-shift. Two streams share the weights: the content stream h sees
its own token, the query stream g (XLNet's partial prediction) only the tokens its factorisation order allows.
"""

from __future__ import annotations

import torch
from torch import nn

from .dropout import Dropout
from .norms import layer_norm

# subtracted from masked scores, as the reference code does (a row masked everywhere stays uniform); float16's
# largest finite value in half precision
MASKED = {torch.float16: 65500.0}


def relative_positions(qlen: int, klen: int, attn_type: str, clamp_len: int, bi_data: bool,
                       device: torch.device | None = None) -> torch.Tensor:
    """The distances each relative encoding row stands for, largest first: klen … -qlen+1 ("bi") or klen … 0
    ("uni"); with ``bi_data`` a second row of the same distances reversed (the backward half of the batch)."""
    end = -qlen if attn_type == "bi" else -1
    forward = torch.arange(klen, end, -1, dtype=torch.int64, device=device).float()
    rows = torch.stack([forward, -forward]) if bi_data else forward[None]
    return rows.clamp(-clamp_len, clamp_len) if clamp_len > 0 else rows


def sinusoid_encoding(distances: torch.Tensor, width: int) -> torch.Tensor:
    """[sin(d·ω) | cos(d·ω)] with ω_k = 10000^(-2k/width): (..., width) for distances (...)."""
    frequencies = 1 / torch.pow(10000, torch.arange(0, width, 2, dtype=torch.int64, device=distances.device
                                                    ).float() / width)
    angles = distances[..., None] * frequencies
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


def rel_shift(scores: torch.Tensor, klen: int) -> torch.Tensor:
    """Realign position scores (batch, heads, qlen, R) computed against the R distances klen, klen-1, … so that
    column j of row i holds the score for distance i - j + (klen - qlen): one reshape, dropping a row, not a gather."""
    batch, heads, qlen, width = scores.shape
    shifted = scores.reshape(batch, heads, width, qlen)[:, :, 1:, :].reshape(batch, heads, qlen, width - 1)
    return shifted[..., :klen]


def project(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """(batch, len, hidden) × (hidden, heads, head) → (batch, heads, len, head), as one matrix product."""
    hidden, heads, width = weight.shape
    return (x @ weight.reshape(hidden, heads * width)).unflatten(-1, (heads, width)).transpose(1, 2)


class XLNetRelativeAttention(nn.Module):
    """One layer's two-stream relative attention with transformers' names (``rel_attn``): q k v o r as
    (hidden, heads, head) tensors, the u / v / s biases, the segment encodings, post-LN."""

    def __init__(self, config):
        super().__init__()
        heads, width, hidden = config.num_attention_heads, config.head_size, config.hidden_size
        for name in ("q", "k", "v", "o", "r"):
            setattr(self, name, nn.Parameter(torch.empty(hidden, heads, width)))
        self.r_r_bias = nn.Parameter(torch.empty(heads, width))
        self.r_s_bias = nn.Parameter(torch.empty(heads, width))
        self.r_w_bias = nn.Parameter(torch.empty(heads, width))
        self.seg_embed = nn.Parameter(torch.empty(2, heads, width))
        self.layer_norm = layer_norm(config)
        self.dropout = Dropout(config.hidden_dropout_prob)
        self.scale = width ** -0.5

    def scores(self, q: torch.Tensor, keys: torch.Tensor, positions: torch.Tensor,
               segments: torch.Tensor | None, mask: torch.Tensor | None) -> torch.Tensor:
        """Attention probabilities (batch, heads, qlen, klen) of queries q against content keys, the positions'
        keys (batch, heads, R, head) and the one-hot segment relation (batch, qlen, klen, 2); mask: 1 = hidden."""
        content = torch.einsum("bnid,bnjd->bnij", q + self.r_w_bias[:, None], keys)
        position = torch.einsum("bnid,bnjd->bnij", q + self.r_r_bias[:, None], positions)
        score = content + rel_shift(position, keys.shape[2])
        if segments is not None:
            by_relation = torch.einsum("bnid,snd->bnis", q + self.r_s_bias[:, None], self.seg_embed)
            score = score + torch.einsum("bijs,bnis->bnij", segments, by_relation)
        score = score * self.scale
        if mask is not None:
            score = score - MASKED.get(score.dtype, 1e30) * mask[:, None].to(score.dtype)
        return self.dropout(torch.softmax(score, dim=-1))

    def post_attention(self, residual: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Heads back to hidden (``o``), dropout, residual, LayerNorm."""
        hidden, heads, width = self.o.shape
        out = context.transpose(1, 2).flatten(2) @ self.o.reshape(hidden, heads * width).T
        return self.layer_norm(self.dropout(out) + residual)

    def forward(self, h: torch.Tensor, g: torch.Tensor | None, mask_h: torch.Tensor | None,
                mask_g: torch.Tensor | None, pos_emb: torch.Tensor, segments: torch.Tensor | None,
                memory: torch.Tensor | None = None, target_mapping: torch.Tensor | None = None,
                ) -> tuple[torch.Tensor, torch.Tensor | None, tuple[torch.Tensor, ...]]:
        """The content stream h (batch, qlen, hidden) over [memory; h], and the query stream g (batch, predictions,
        hidden) when given, placed on its target positions by ``target_mapping`` (batch, predictions, qlen).
        Returns (h, g, the probabilities of each stream)."""
        context_in = h if memory is None else torch.cat([memory, h], dim=1)
        keys, values = project(context_in, self.k), project(context_in, self.v)
        positions = project(pos_emb.to(self.r.dtype), self.r)
        probs_h = self.scores(project(h, self.q), keys, positions, segments, mask_h)
        new_h = self.post_attention(h, torch.einsum("bnij,bnjd->bnid", probs_h, values))
        if g is None:
            return new_h, None, (probs_h,)
        q_g = project(g, self.q)
        if target_mapping is not None:  # each prediction's query moves to the position it predicts
            q_g = torch.einsum("bnmd,bml->bnld", q_g, target_mapping)
        probs_g = self.scores(q_g, keys, positions, segments, mask_g)
        context_g = torch.einsum("bnij,bnjd->bnid", probs_g, values)
        if target_mapping is not None:
            context_g = torch.einsum("bnld,bml->bnmd", context_g, target_mapping)
        return new_h, self.post_attention(g, context_g), (probs_h, probs_g)
