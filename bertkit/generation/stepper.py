"""The interface between a model and the search: a :class:`Stepper` turns the newest tokens of every row into the
next token's logits, keeping whatever state the model needs (its key / value cache, the attention mask, the
positions) — so greedy, sampling and beam search are written once for decoder-only and encoder-decoder models.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from .kv_cache import KVCache


class Stepper(Protocol):
    """A model being decoded, one call per step."""

    def next_logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """(rows, t) new tokens → (rows, vocab) logits of the next token; extends its KV cache."""
        ...

    def reorder(self, rows: torch.Tensor) -> None:
        """Keep / duplicate rows (beam search, expanding to beams)."""
        ...


class CausalLMStepper:
    """A decoder-only LM (GPT-2): its cache, the attention mask so far and each row's positions.

    Positions follow transformers' ``generate``: in a left-padded batch each row counts its real tokens only
    (``cumsum`` of the mask − 1), so a row's tokens get the positions they would get unpadded. Without the cache
    (``use_cache=False``) every step recomputes the whole sequence: the baseline the cache is measured against.
    """

    def __init__(self, model: nn.Module, attention_mask: torch.Tensor | None = None, use_cache: bool = True):
        self.model = model
        self.mask = attention_mask  # (rows, tokens seen or about to be): 1 real, 0 padding
        self.seen = 0  # tokens given so far
        self.cache = KVCache(model.base_model.encoder.depth) if use_cache else None
        self.tokens: torch.Tensor | None = None  # every token so far, only without the cache

    def next_logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """Run the model on the new tokens (after the cached ones) and return the last position's logits."""
        rows, new = tokens.shape
        ones = torch.ones(rows, new, dtype=torch.long, device=tokens.device)
        if self.mask is None:
            self.mask = ones
        elif self.mask.shape[1] < self.seen + new:  # the prompt's mask was given with the prompt; later tokens real
            self.mask = torch.cat([self.mask, ones], dim=1)
        self.seen += new
        padded = not bool(self.mask.all())
        positions = (self.mask.cumsum(-1) - 1).masked_fill(self.mask == 0, 0) if padded else None
        if self.cache is None:
            self.tokens = tokens if self.tokens is None else torch.cat([self.tokens, tokens], dim=1)
            inputs = self.tokens
        else:
            inputs = tokens
            positions = positions[:, -new:] if positions is not None else None
        with torch.no_grad():
            out = self.model(inputs, attention_mask=self.mask if padded else None, position_ids=positions,
                             past_key_values=self.cache, use_cache=self.cache is not None, logits_to_keep=1)
        return out.logits[:, -1].float()

    def reorder(self, rows: torch.Tensor) -> None:
        """Keep / duplicate rows of the mask, the cache and the tokens."""
        if self.mask is not None:
            self.mask = self.mask.index_select(0, rows)
        if self.cache is not None:
            self.cache.reorder(rows)
        if self.tokens is not None:
            self.tokens = self.tokens.index_select(0, rows)
