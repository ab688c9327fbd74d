"""Reformer's LSH attention (Kitaev et al. 2020): shared-QK attention among positions that hash alike.

1. **Shared QK**: keys are the queries, normalised (k̂ = q/|q|); scores are q·k̂. The key projection of the block
   is not used. A position attends to itself only when nothing else is allowed (q·q̂ would always win).
2. **Hash**: random rotations R (d × buckets/2); bucket = argmax([qR, −qR]) — nearby directions share a bucket.
3. **Sort** positions by (bucket, position), cut the sorted order into chunks of ``lsh_chunk_size``; each chunk
   attends to itself and the previous chunk (a bucket may straddle a chunk border). Cost O(n·chunk).
4. **Rounds**: ``lsh_rounds`` independent hashings; each position's outputs are averaged with weights
   softmax(logsumexp of its scores) over rounds, i.e. as if the union of its rounds' keys were one softmax.

Padded positions hash to an extra last bucket, so they sort after every real token and a right-padded sequence is
chunked as the unpadded one. Rotations are a buffer (saved with the model) used in evaluation; training draws new
ones every forward pass, as Reformer does.
"""

from __future__ import annotations

import torch
from torch import nn

from ...config import BertConfig
from . import keep_keys, refuse_maps

SELF_SCORE = -1e5  # Reformer's score for a position attending to itself: below any real score, above padding


class LSHAttention(nn.Module):
    """``lsh_rounds`` hashings into ``lsh_num_buckets`` buckets; chunks of ``lsh_chunk_size`` sorted positions."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.num_buckets = config.lsh_num_buckets
        self.chunk_size = config.lsh_chunk_size
        self.rounds = config.lsh_rounds
        self.register_buffer("rotations", torch.randn(self.rounds, config.head_size, max(self.num_buckets // 2, 1)))

    def buckets(self, q: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        """(batch, heads, rounds, seq) bucket of each position in each round; padding in bucket ``num_buckets``."""
        batch, heads, n, _ = q.shape
        if self.num_buckets == 1:
            buckets = q.new_zeros(batch, heads, self.rounds, n, dtype=torch.long)
        else:
            rotations = torch.randn_like(self.rotations) if self.training else self.rotations
            rotated = torch.einsum("bhnd,rdk->bhrnk", q.detach(), rotations.to(q.dtype))
            buckets = torch.cat([rotated, -rotated], dim=-1).argmax(dim=-1)
        if keep is not None:
            buckets = buckets.masked_fill(~keep[:, None, None, :], self.num_buckets)
        return buckets

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
                dropout_prob: float, return_probs: bool = False) -> tuple[torch.Tensor, None]:
        refuse_maps("lsh", return_probs)
        batch, heads, n, d = q.shape
        chunk = min(self.chunk_size, n)
        if n % chunk:
            raise ValueError(f"attention='lsh': the sequence length {n} is not a multiple of lsh_chunk_size="
                             f"{chunk}; pad the batch to a multiple of {chunk} tokens (tokenizer: "
                             f"padding='max_length', max_length=a multiple of {chunk})")
        keep = keep_keys(mask, "lsh")
        positions = torch.arange(n, device=q.device)
        order = (self.buckets(q, keep) * n + positions).argsort(dim=-1)  # (b, h, rounds, n): sorted positions

        def sort(t: torch.Tensor) -> torch.Tensor:  # (b, h, n, d) → (b, h, rounds, n, d) in each round's order
            expanded = t.unsqueeze(2).expand(-1, -1, self.rounds, -1, -1)
            return expanded.gather(3, order.unsqueeze(-1).expand(-1, -1, -1, -1, t.shape[-1]))

        shape = (batch, heads, self.rounds, n // chunk, chunk)
        queries, values = sort(q).view(*shape, d), sort(v).view(*shape, v.shape[-1])
        keys = nn.functional.normalize(queries, dim=-1)
        query_pos = order.view(shape)
        key_pos = look_back(query_pos, fill=-1)
        keys, values = look_back(keys), look_back(values)
        scores = queries @ keys.transpose(-1, -2)  # (b, h, rounds, chunks, chunk, 2·chunk or chunk)
        scores = scores.masked_fill(query_pos.unsqueeze(-1) == key_pos.unsqueeze(-2), SELF_SCORE)
        allowed = key_pos >= 0  # the first chunk has no previous one
        if keep is not None:
            allowed = allowed & keep.gather(1, key_pos.clamp(min=0).flatten(1)).view(key_pos.shape)
        scores = scores.masked_fill(~allowed.unsqueeze(-2), torch.finfo(scores.dtype).min)
        lse = scores.logsumexp(dim=-1, keepdim=True)
        probs = torch.exp(scores - lse)
        if dropout_prob > 0:
            probs = nn.functional.dropout(probs, dropout_prob)
        context = (probs @ values).view(batch, heads, self.rounds, n, -1)
        unsort = order.argsort(dim=-1)
        context = context.gather(3, unsort.unsqueeze(-1).expand(-1, -1, -1, -1, v.shape[-1]))
        lse = lse.view(batch, heads, self.rounds, n).gather(3, unsort)
        weights = lse.softmax(dim=2).unsqueeze(-1)  # each round by its share of the total normaliser
        return (weights * context).sum(dim=2), None


def look_back(chunks: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
    """(…, chunks, chunk[, d]) → each chunk followed by the previous one (``fill`` before the first chunk)."""
    if chunks.shape[3] == 1:  # one chunk: nothing to look back to
        return chunks
    previous = torch.cat([torch.full_like(chunks[:, :, :, :1], fill), chunks[:, :, :, :-1]], dim=3)
    return torch.cat([chunks, previous], dim=4)
