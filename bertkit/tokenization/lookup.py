"""Token ↔ id lookups that every tokenizer shares (WordPiece and byte-level BPE alike): the tokenizer keeps
``vocab`` (token → id), ``ids_to_tokens`` (id → token) and ``_specials`` (its special tokens)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class VocabularyLookup:
    """Sizes, id → token conversion and batch decoding over a tokenizer's ``vocab`` and ``ids_to_tokens``."""

    vocab: dict[str, int]
    ids_to_tokens: dict[int, str]
    _specials: set[str]

    @property
    def vocab_size(self) -> int:
        """Number of entries in the vocabulary."""
        return len(self.vocab)

    def __len__(self) -> int:
        return len(self.vocab)

    def get_vocab(self) -> dict[str, int]:
        """A copy of the token → id dict."""
        return dict(self.vocab)

    def convert_ids_to_tokens(self, ids: int | Iterable[int], skip_special_tokens: bool = False) -> str | list[str]:
        """Id(s) → token(s) as stored; an id outside the vocabulary is an error."""
        if isinstance(ids, int):
            return self._id_to_token(ids)
        tokens = [self._id_to_token(int(i)) for i in ids]
        return [t for t in tokens if t not in self._specials] if skip_special_tokens else tokens

    def _id_to_token(self, index: int) -> str:
        token = self.ids_to_tokens.get(index)
        if token is None:
            raise ValueError(f"token id {index} is outside the vocabulary (0..{len(self.vocab) - 1})")
        return token

    def batch_decode(self, batch: Iterable[Iterable[int]], **kwargs: Any) -> list[str]:
        """The tokenizer's ``decode`` for each sequence of a batch."""
        return [self.decode(ids, **kwargs) for ids in batch]
