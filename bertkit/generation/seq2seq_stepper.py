"""The encoder-decoder's :class:`~bertkit.generation.stepper.Stepper`: the source is encoded once; each step runs
the decoder on the newest tokens with its key / value cache, attending to the encoder's output.

Beam search duplicates and reorders rows: the encoder's output and its padding mask are reordered with the cache
(the cross-attention entries hold the projected encoder output, so they move too).
"""

from __future__ import annotations

import torch
from torch import nn

from .kv_cache import KVCache


class Seq2SeqStepper:
    """Decoding state of an encoder-decoder: memory, memory mask, the decoder's cache (or its tokens without one)."""

    def __init__(self, model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                 use_cache: bool = True):
        self.model = model
        with torch.no_grad():
            self.memory = model.model.encode(input_ids, attention_mask)
        self.memory_mask = attention_mask
        self.cache = KVCache(model.model.decoder.encoder.depth) if use_cache else None
        self.tokens: torch.Tensor | None = None  # every decoder token so far, only without the cache

    def next_logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """Run the decoder on the new tokens (after the cached ones); the last position's logits."""
        if self.cache is None:
            self.tokens = tokens if self.tokens is None else torch.cat([self.tokens, tokens], dim=1)
            tokens = self.tokens
        with torch.no_grad():
            out = self.model(encoder_outputs=self.memory, attention_mask=self.memory_mask, decoder_input_ids=tokens,
                             past_key_values=self.cache, use_cache=self.cache is not None)
        return out.logits[:, -1].float()

    def reorder(self, rows: torch.Tensor) -> None:
        """Keep / duplicate rows of the memory, its mask, the cache and the tokens."""
        self.memory = self.memory.index_select(0, rows)
        if self.memory_mask is not None:
            self.memory_mask = self.memory_mask.index_select(0, rows)
        if self.cache is not None:
            self.cache.reorder(rows)
        if self.tokens is not None:
            self.tokens = self.tokens.index_select(0, rows)
