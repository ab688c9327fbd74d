"""BertTokenizer: BasicTokenizer + WordPiece + special tokens, with the Hugging Face calling conventions.

Speed comes from caching whole chunks (the whitespace-separated pieces after cleaning): a chunk's tokens depend on
the chunk alone, and real text repeats its chunks, so most of a corpus is a dict lookup per chunk.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..atomic import write_text_atomic
from .alignment import Span, chunks_with_spans, token_spans
from .basic import BasicTokenizer
from .batch import (
    PAIR_TRUNCATIONS,
    EncodesBatches,
    Sequence,
    check_pair_truncation,
    check_text,
)
from .lookup import BoundedCache, VocabularyLookup, special_token_pattern
from .pretrained import CONFIG_FILE, SPECIAL_TOKEN_NAMES, VOCAB_FILE, tokenizer_arguments
from .vocab import load_vocab, save_vocab
from .wordpiece import WordPiece

logger = logging.getLogger(__name__)

_CACHE_LIMIT = 1_000_000  # chunks; a cache this full is cleared rather than grown without bound


class BertTokenizer(VocabularyLookup, EncodesBatches):
    """BERT's WordPiece tokenizer, from a ``vocab.txt`` or a ``tokenizer.json``; ids equal Hugging Face's."""

    pre_tokenizer: str | None = None  # a variant that splits words differently names itself in tokenizer_config.json

    def __init__(
        self,
        vocab_file: str | os.PathLike | None = None,
        do_lower_case: bool = True,
        do_basic_tokenize: bool = True,
        never_split: Iterable[str] | None = None,
        unk_token: str = "[UNK]",
        sep_token: str = "[SEP]",
        pad_token: str = "[PAD]",
        cls_token: str = "[CLS]",
        mask_token: str = "[MASK]",
        tokenize_chinese_chars: bool = True,
        strip_accents: bool | None = None,
        model_max_length: int = 512,
        clean_up_tokenization_spaces: bool = True,
        vocab: dict[str, int] | None = None,
        max_input_chars_per_word: int = 100,
        pair_truncation: str = "reference",
    ):
        if (vocab_file is None) == (vocab is None):
            raise ValueError("give exactly one of vocab_file (a vocab.txt path) or vocab (a token → id dict)")
        self.vocab = dict(vocab) if vocab is not None else load_vocab(vocab_file)
        self.ids_to_tokens = {i: t for t, i in self.vocab.items()}
        self.unk_token, self.sep_token, self.pad_token = unk_token, sep_token, pad_token
        self.cls_token, self.mask_token = cls_token, mask_token
        missing = [t for t in self.all_special_tokens if t not in self.vocab]
        if missing:
            raise ValueError(f"the vocabulary lacks the special token(s) {missing}; BERT needs all of them")
        self.do_basic_tokenize = do_basic_tokenize
        self.pair_truncation = check_pair_truncation(pair_truncation)  # see batch.PAIR_TRUNCATIONS
        self.model_max_length = model_max_length
        self.clean_up_tokenization_spaces = clean_up_tokenization_spaces
        self.basic = BasicTokenizer(do_lower_case, never_split, tokenize_chinese_chars, strip_accents)
        self.wordpiece = WordPiece(self.vocab, unk_token, max_input_chars_per_word)
        self._specials = frozenset(self.all_special_tokens)
        self._special_split = special_token_pattern(self._specials)  # written in a text, they stay whole
        first_chars = {t[0] for t in self._specials}
        self._special_first_char = first_chars.pop() if len(first_chars) == 1 else None  # "[": a cheap filter
        self._chunk_ids: BoundedCache = BoundedCache(_CACHE_LIMIT)  # filled together: cleared together
        self._chunk_tokens: BoundedCache = BoundedCache(_CACHE_LIMIT)

    # -- loading and saving -------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, **overrides: Any) -> BertTokenizer:
        """Load a local model folder: ``vocab.txt`` or ``tokenizer.json``, and ``tokenizer_config.json`` if present.

        With both vocab.txt and tokenizer.json, vocab.txt is used and the two must agree (see ``pretrained.py``).
        """
        tokenizer_class, arguments = tokenizer_arguments(folder, cls)
        return tokenizer_class(**{**arguments, **overrides})

    def save_pretrained(self, folder: str | os.PathLike) -> list[Path]:
        """Write ``vocab.txt`` and ``tokenizer_config.json`` (loadable by transformers too), atomically."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = {
            "tokenizer_class": "BertTokenizer",
            "do_lower_case": self.basic.do_lower_case,
            "do_basic_tokenize": self.do_basic_tokenize,
            "never_split": sorted(self.basic.never_split) or None,
            "tokenize_chinese_chars": self.basic.tokenize_chinese_chars,
            "strip_accents": self.basic.strip_accents,
            "model_max_length": self.model_max_length,
            "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces,
            **{name: getattr(self, name) for name in SPECIAL_TOKEN_NAMES},
            "pair_truncation": self.pair_truncation,  # the rule the model was trained with travels with it
        }
        if self.pre_tokenizer:
            config["pre_tokenizer"] = self.pre_tokenizer
        if self.wordpiece.max_input_chars_per_word != 100:  # transformers' fixed value; kept only when it differs
            config["max_input_chars_per_word"] = self.wordpiece.max_input_chars_per_word
        vocab_path = save_vocab(self.vocab, folder / VOCAB_FILE)
        write_text_atomic(folder / CONFIG_FILE, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
        return [vocab_path, folder / CONFIG_FILE]

    # -- vocabulary -------------------------------------------------------------------------------------

    @property
    def all_special_tokens(self) -> list[str]:
        """The five special tokens, in transformers' order."""
        return [self.unk_token, self.sep_token, self.pad_token, self.cls_token, self.mask_token]

    @property
    def all_special_ids(self) -> list[int]:
        """Ids of the special tokens."""
        return [self.vocab[t] for t in self.all_special_tokens]

    unk_token_id = property(lambda self: self.vocab[self.unk_token])
    sep_token_id = property(lambda self: self.vocab[self.sep_token])
    pad_token_id = property(lambda self: self.vocab[self.pad_token])
    cls_token_id = property(lambda self: self.vocab[self.cls_token])
    mask_token_id = property(lambda self: self.vocab[self.mask_token])

    def convert_tokens_to_ids(self, tokens: str | list[str]) -> int | list[int]:
        """Token(s) → id(s); unknown tokens map to ``[UNK]``."""
        unk = self.unk_token_id
        if isinstance(tokens, str):
            return self.vocab.get(tokens, unk)
        return [self.vocab.get(t, unk) for t in tokens]

    # -- text → tokens ----------------------------------------------------------------------------------

    def _segments(self, text: str) -> list[str]:
        """Split out special tokens written in the text; they sit at the odd indices of the result."""
        if self._special_first_char is not None and self._special_first_char not in text:
            return [text]
        return self._special_split.split(text)

    def _chunks(self, text: str) -> list[str]:
        return self.basic.chunks(text) if self.do_basic_tokenize else text.split()

    def _tokens_of_chunk(self, chunk: str) -> list[str]:
        """WordPiece tokens of one chunk (computed on a cache miss)."""
        if not self.do_basic_tokenize:
            return self.wordpiece.tokenize(chunk)
        return [piece for word in self.basic.split_chunk(chunk, self._specials) for piece in self._pieces(word)]

    def _pieces(self, word: str) -> list[str]:
        """WordPiece of one word; words the user declared never-split stay whole."""
        return [word] if word in self.basic.never_split else self.wordpiece.tokenize(word)

    def _remember(self, chunk: str) -> list[int]:
        """Compute a chunk's tokens and ids once and keep them."""
        tokens = self._chunk_tokens.put(chunk, self._tokens_of_chunk(chunk))
        return self._chunk_ids.put(chunk, self.convert_tokens_to_ids(tokens))

    def tokenize(self, text: str) -> list[str]:
        """Text → WordPiece tokens (no special tokens added)."""
        check_text(text, "text")
        tokens: list[str] = []
        for i, segment in enumerate(self._segments(text)):
            if i % 2:
                tokens.append(segment)
                continue
            for chunk in self._chunks(segment):
                cached = self._chunk_tokens.get(chunk)
                if cached is None:
                    self._remember(chunk)
                    cached = self._chunk_tokens[chunk]
                tokens += cached
        return tokens

    def text_to_ids(self, text: str) -> list[int]:
        """Text → token ids (no special tokens added): the hot path, one dict lookup per chunk."""
        check_text(text, "text")
        ids: list[int] = []
        cache = self._chunk_ids
        for i, segment in enumerate(self._segments(text)):
            if i % 2:
                ids.append(self.vocab[segment])
                continue
            for chunk in self._chunks(segment):
                chunk_ids = cache.get(chunk)
                ids += chunk_ids if chunk_ids is not None else self._remember(chunk)
        return ids

    def text_to_ids_with_offsets(self, text: str) -> tuple[list[int], list[Span]]:
        """Text → token ids and each token's (start, end) character span in ``text``."""
        check_text(text, "text")
        ids: list[int] = []
        spans: list[Span] = []
        position = 0
        for i, segment in enumerate(self._segments(text)):
            if i % 2:
                ids.append(self.vocab[segment])
                spans.append((position, position + len(segment)))
            else:
                for token, (start, end) in self._token_spans(segment):
                    ids.append(self.vocab.get(token, self.unk_token_id))
                    spans.append((start + position, end + position))
            position += len(segment)
        return ids, spans

    def _token_spans(self, text: str) -> list[tuple[str, Span]]:
        """Tokens of a text without special tokens, each with its span: the slow twin of ``text_to_ids``."""
        basic = self.basic
        if not self.do_basic_tokenize:  # WordPiece straight on whitespace-separated words
            return [(t, m.span()) for m in re.finditer(r"\S+", text) for t in self.wordpiece.tokenize(m.group())]

        out: list[tuple[str, Span]] = []
        for chunk, positions in chunks_with_spans(text, basic.tokenize_chinese_chars):
            words = basic.split_chunk(chunk, self._specials)
            out += token_spans(chunk, positions, words, self._pieces, basic.do_lower_case, basic.strip_accents,
                               self.unk_token)
        return out

    # -- tokens → model inputs --------------------------------------------------------------------------

    def encode(
        self,
        text: str,
        text_pair: str | None = None,
        add_special_tokens: bool = True,
        truncation: bool | str = False,
        max_length: int | None = None,
    ) -> list[int]:
        """Text (and an optional pair) → ids, ``[CLS] A [SEP] B [SEP]`` by default."""
        if text_pair is None and not truncation:  # the common case, without the batch machinery
            ids = self.text_to_ids(text)
            if len(ids) + 2 > self.model_max_length:
                self._warn_too_long(len(ids) + 2 * add_special_tokens)
            return [self.cls_token_id, *ids, self.sep_token_id] if add_special_tokens else ids
        enc = self(text, text_pair, add_special_tokens=add_special_tokens, truncation=truncation,
                   max_length=max_length)
        return enc["input_ids"]

    def _build(
        self, text: str, pair: str | None, add_special: bool, truncation: bool | str, max_length: int | None,
        offsets: bool,
    ) -> Sequence:
        """One sequence: tokenize, truncate, add ``[CLS]``/``[SEP]``, segment ids."""
        ids_a, spans_a = self.text_to_ids_with_offsets(text) if offsets else (self.text_to_ids(text), None)
        ids_b, spans_b = (None, None)
        if pair is not None:
            ids_b, spans_b = self.text_to_ids_with_offsets(pair) if offsets else (self.text_to_ids(pair), None)
        n_special = (3 if pair is not None else 2) if add_special else 0
        if truncation:
            budget = max_length - n_special
            if budget < 0:
                raise ValueError(f"max_length={max_length} leaves no room for the {n_special} special tokens")
            keep_a, keep_b = PAIR_TRUNCATIONS[self.pair_truncation](
                len(ids_a), len(ids_b) if ids_b is not None else None, budget, truncation)
            ids_a, spans_a = ids_a[:keep_a], spans_a[:keep_a] if spans_a else spans_a
            if ids_b is not None:
                ids_b, spans_b = ids_b[:keep_b], spans_b[:keep_b] if spans_b else spans_b
        seq = Sequence()
        if add_special:
            seq.append([self.cls_token_id], 0, True, None)
        seq.append(ids_a, 0, False, spans_a)
        if add_special:
            seq.append([self.sep_token_id], 0, True, None)
        if ids_b is not None:
            seq.append(ids_b, 1, False, spans_b)
            if add_special:
                seq.append([self.sep_token_id], 1, True, None)
        if len(seq.input_ids) > self.model_max_length and not truncation:
            self._warn_too_long(len(seq.input_ids))
        return seq

    def _warn_too_long(self, length: int) -> None:
        logger.warning("a sequence has %d tokens, more than model_max_length=%d; the model will refuse it "
                       "unless truncation=True", length, self.model_max_length)

    # -- ids → text --------------------------------------------------------------------------------------

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """Join tokens with spaces and glue ``##`` pieces to their word."""
        return " ".join(tokens).replace(" ##", "").strip()

    def decode(
        self, ids: Iterable[int], skip_special_tokens: bool = False, clean_up_tokenization_spaces: bool | None = None
    ) -> str:
        """Ids → text: pieces joined into words, special tokens kept unless skipped."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        text = self.convert_tokens_to_string(self.convert_ids_to_tokens(ids, skip_special_tokens))
        if clean_up_tokenization_spaces is None:
            clean_up_tokenization_spaces = self.clean_up_tokenization_spaces
        return clean_up_spaces(text) if clean_up_tokenization_spaces else text

    def __repr__(self) -> str:
        b = self.basic
        return (f"BertTokenizer(vocab_size={len(self.vocab)}, do_lower_case={b.do_lower_case}, "
                f"strip_accents={b.strip_accents}, tokenize_chinese_chars={b.tokenize_chinese_chars})")


def clean_up_spaces(text: str) -> str:
    """Undo the spaces that tokenization put before English punctuation and contractions (transformers' rule)."""
    for spaced, tight in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                          (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
        text = text.replace(spaced, tight)
    return text

