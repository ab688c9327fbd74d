"""Token ↔ id lookups that every tokenizer shares (WordPiece and byte-level BPE alike): the tokenizer keeps
``vocab`` (token → id), ``ids_to_tokens`` (id → token) and ``_specials`` (its special tokens)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any


def special_token_pattern(tokens: Iterable[str]) -> re.Pattern[str] | None:
    """A regex that splits the special tokens written in a text out whole (a capturing group, so ``split`` keeps
    them at the odd indices); where several start at one place the longest wins. None without special tokens."""
    by_length = sorted(tokens, key=len, reverse=True)
    return re.compile("(" + "|".join(map(re.escape, by_length)) + ")") if by_length else None


class BoundedCache(dict):
    """What a tokenizer computed for a text unit it met before (a chunk's ids, a word's pieces): a plain dict to
    read (``get`` stays C-fast on the hot path), cleared when full rather than grown without bound."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit

    def put(self, key: str, value: Any) -> Any:
        """Keep ``value`` under ``key`` (clearing the cache first when full) and return it."""
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
        return value


# the named special tokens of transformers' tokenizers, in transformers' order
SPECIAL_ROLES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


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


class NamedSpecialTokens(VocabularyLookup):
    """``all_special_tokens`` / ``all_special_ids`` and ``<role>_token_id`` for a tokenizer that keeps each named
    special token (``bos_token`` … ``mask_token``, None when unset) as an attribute, and a list
    ``additional_special_tokens``."""

    additional_special_tokens: list[str]

    @property
    def all_special_tokens(self) -> list[str]:
        """The special tokens that are set, each once, in transformers' order, then the additional ones."""
        named = [getattr(self, role) for role in SPECIAL_ROLES]
        return list(dict.fromkeys(t for t in [*named, *self.additional_special_tokens] if t is not None))

    @property
    def all_special_ids(self) -> list[int]:
        """Ids of the special tokens."""
        return [self.vocab[t] for t in self.all_special_tokens]

    def _role_id(self, role: str) -> int | None:
        token = getattr(self, role)
        return None if token is None else self.vocab[token]

    bos_token_id = property(lambda self: self._role_id("bos_token"))
    eos_token_id = property(lambda self: self._role_id("eos_token"))
    unk_token_id = property(lambda self: self._role_id("unk_token"))
    sep_token_id = property(lambda self: self._role_id("sep_token"))
    pad_token_id = property(lambda self: self._role_id("pad_token"))
    cls_token_id = property(lambda self: self._role_id("cls_token"))
    mask_token_id = property(lambda self: self._role_id("mask_token"))
