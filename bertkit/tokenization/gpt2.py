"""GPT2Tokenizer: byte-level BPE (vocab.json + merges.txt) with the Hugging Face calling conventions.

Text → ids in four steps, each in its own module:

1. special tokens written in the text are cut out whole (``<|endoftext|>``, ``<mask>``, ...);
2. each piece between them is split into GPT-2's words (``byte_level.split_words``), after a leading space is added
   when ``add_prefix_space`` is set (so the first word is spelled as a word inside a sentence, ``Ġhello``);
3. each word is written as its UTF-8 byte characters (``byte_level.to_byte_chars``);
4. the learned merges join those characters into vocabulary tokens (``bpe.BPE``), cached per word.

Decoding maps tokens back to bytes and the bytes to text, so ``decode(encode(x)) == x`` for any text. GPT-2 adds no
special tokens around a text; ``RobertaTokenizer`` (roberta.py) is this tokenizer with RoBERTa's ``<s> A </s>``.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..atomic import write_text_atomic
from .batch import (
    EncodesBatches,
    Sequence,
    check_text,
    rust_truncation_lengths,
)
from .bpe import BPE
from .byte_bpe_files import (
    MERGES_TXT,
    SPECIAL_ROLES,
    VOCAB_JSON,
    check_byte_vocab,
    check_same_model,
    config_arguments,
    load_merges_txt,
    load_vocab_json,
    save_merges_txt,
    save_vocab_json,
)
from .byte_bpe_json import is_byte_level_json, read_byte_level_json
from .byte_level import from_byte_chars, split_words, to_byte_chars
from .byte_offsets import Span, piece_spans
from .lookup import BoundedCache, NamedSpecialTokens, special_token_pattern
from .pretrained import CONFIG_FILE, read_config
from .tokenizer_json import TOKENIZER_JSON

logger = logging.getLogger(__name__)

_CACHE_LIMIT = 500_000  # words
# Unicode White_Space (Rust's char::is_whitespace, which the tokenizers library strips with); str.isspace would also
# take the separators U+001C..U+001F.
WHITESPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
             "\u2028\u2029\u202f\u205f\u3000"


class GPT2Tokenizer(NamedSpecialTokens, EncodesBatches):
    """GPT-2's byte-level BPE tokenizer; ids equal ``transformers.GPT2TokenizerFast`` on the same folder."""

    tokenizer_class = "GPT2Tokenizer"  # the name written to tokenizer_config.json, which transformers loads by
    token_type_ids_by_default = False  # as transformers' GPT-2 / RoBERTa tokenizers: ids and attention mask only

    def __init__(
        self,
        vocab_file: str | os.PathLike | None = None,
        merges_file: str | os.PathLike | None = None,
        *,
        vocab: dict[str, int] | None = None,
        merges: list[tuple[str, str]] | None = None,
        add_prefix_space: bool = False,
        bos_token: str | None = "<|endoftext|>",
        eos_token: str | None = "<|endoftext|>",
        unk_token: str | None = "<|endoftext|>",
        sep_token: str | None = None,
        pad_token: str | None = None,
        cls_token: str | None = None,
        mask_token: str | None = None,
        additional_special_tokens: Iterable[str] = (),
        model_max_length: int = 1024,
        errors: str = "replace",
        lstrip_tokens: Iterable[str] = (),
        rstrip_tokens: Iterable[str] = (),
    ):
        if (vocab_file is None) == (vocab is None) or (merges_file is None) == (merges is None):
            raise ValueError("give vocab_file + merges_file (paths) or vocab + merges (a token → id dict and a list "
                             "of (left, right) pairs)")
        self.vocab = dict(vocab) if vocab is not None else load_vocab_json(vocab_file)
        self.merges = list(merges) if merges is not None else load_merges_txt(merges_file)
        check_byte_vocab(self.vocab, self.merges, str(vocab_file or "the vocabulary"))
        self.bos_token, self.eos_token, self.unk_token, self.sep_token = bos_token, eos_token, unk_token, sep_token
        self.pad_token, self.cls_token, self.mask_token = pad_token, cls_token, mask_token
        self.additional_special_tokens = list(additional_special_tokens)
        for token in self.all_special_tokens:  # as transformers: a special token outside vocab.json gets a new id
            if token not in self.vocab:
                self.vocab[token] = max(self.vocab.values()) + 1
        self.ids_to_tokens = {i: t for t, i in self.vocab.items()}
        self.add_prefix_space = add_prefix_space
        self.model_max_length = model_max_length
        self.errors = errors
        self.bpe = BPE(self.merges)
        self._specials = frozenset(self.all_special_tokens)
        # Special tokens that eat the whitespace on their left / right (roberta-base's "<mask>": "a <mask>" → a, <mask>)
        self.lstrip_tokens, self.rstrip_tokens = set(lstrip_tokens), set(rstrip_tokens)
        unknown = (self.lstrip_tokens | self.rstrip_tokens) - self._specials
        if unknown:
            raise ValueError(f"lstrip_tokens / rstrip_tokens name {sorted(unknown)}, which are not special tokens")
        self._special_split = special_token_pattern(self._specials)
        self._word_ids: BoundedCache = BoundedCache(_CACHE_LIMIT)

    # -- loading and saving -------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, **overrides: Any) -> GPT2Tokenizer:
        """Load a byte-level ``tokenizer.json`` (else ``vocab.json`` + ``merges.txt``) and ``tokenizer_config.json``.

        tokenizer.json comes first, as in transformers: it alone records which special tokens eat the spaces beside
        them. With vocab.json + merges.txt beside it, the files must hold the same model. As in transformers,
        ``add_prefix_space`` comes from tokenizer_config.json (default False), never from tokenizer.json.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"no such model folder: {folder} (bertkit loads local folders, not hub names)")
        if (folder / TOKENIZER_JSON).is_file() and is_byte_level_json(folder / TOKENIZER_JSON):
            _, arguments = read_byte_level_json(folder / TOKENIZER_JSON)
            defaults = inspect.signature(cls.__init__).parameters
            for role in SPECIAL_ROLES:  # a default special token the file does not have is not added to it
                if role not in arguments and defaults[role].default not in arguments["vocab"]:
                    arguments[role] = None
            if (folder / VOCAB_JSON).is_file():
                check_same_model(folder, arguments["vocab"], arguments["merges"])
            if arguments.pop("add_prefix_space"):  # transformers rebuilds the pre-tokenizer from its own setting
                logger.warning("%s: %s adds a prefix space, but transformers' tokenizers take add_prefix_space from "
                               "%s (default False) instead, and so does bertkit", folder, TOKENIZER_JSON, CONFIG_FILE)
        else:
            arguments = {"vocab_file": folder / VOCAB_JSON, "merges_file": folder / MERGES_TXT}
        arguments.update(config_arguments(read_config(folder)))
        return cls(**{**arguments, **overrides})

    def save_pretrained(self, folder: str | os.PathLike) -> list[Path]:
        """Write ``vocab.json``, ``merges.txt`` and ``tokenizer_config.json`` (transformers loads them), atomically."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = {"tokenizer_class": self.tokenizer_class, "add_prefix_space": self.add_prefix_space,
                  "errors": self.errors, "model_max_length": self.model_max_length,
                  "clean_up_tokenization_spaces": False,
                  **{role: getattr(self, role) for role in SPECIAL_ROLES if getattr(self, role) is not None}}
        if self.additional_special_tokens:
            config["additional_special_tokens"] = self.additional_special_tokens
        config["added_tokens_decoder"] = {  # how transformers learns which special tokens eat whitespace
            str(self.vocab[t]): {"content": t, "lstrip": t in self.lstrip_tokens, "normalized": False,
                                 "rstrip": t in self.rstrip_tokens, "single_word": False, "special": True}
            for t in self.all_special_tokens}
        paths = [save_vocab_json(self.vocab, folder / VOCAB_JSON), save_merges_txt(self.merges, folder / MERGES_TXT)]
        paths.append(write_text_atomic(folder / CONFIG_FILE, json.dumps(config, indent=2, ensure_ascii=False) + "\n"))
        return paths

    # -- vocabulary -------------------------------------------------------------------------------------


    def convert_tokens_to_ids(self, tokens: str | list[str]) -> int | None | list[int | None]:
        """Token(s) → id(s); an unknown token maps to the unknown token's id (None without one)."""
        if isinstance(tokens, str):
            return self.vocab.get(tokens, self.unk_token_id)
        return [self.vocab.get(t, self.unk_token_id) for t in tokens]

    # -- text → tokens ----------------------------------------------------------------------------------

    def _segments(self, text: str) -> list[tuple[str, int]]:
        """Split out special tokens written in the text, each piece with its start; specials at the odd indices."""
        if self._special_split is None:
            return [(text, 0)]
        segments, end = [], 0
        for match in self._special_split.finditer(text):
            segments += [(text[end:match.start()], end), (match.group(), match.start())]
            end = match.end()
        segments.append((text[end:], end))
        if self.lstrip_tokens or self.rstrip_tokens:
            for i in range(1, len(segments), 2):
                if segments[i][0] in self.lstrip_tokens:
                    segments[i - 1] = (segments[i - 1][0].rstrip(WHITESPACE), segments[i - 1][1])
                if segments[i][0] in self.rstrip_tokens:
                    after, start = segments[i + 1]
                    segments[i + 1] = (after.lstrip(WHITESPACE), start + len(after) - len(after.lstrip(WHITESPACE)))
        return segments

    def _words(self, segment: str) -> list[str]:
        """GPT-2's words of a text between special tokens (after the prefix space, if set)."""
        if self.add_prefix_space and not segment.startswith(" "):
            segment = " " + segment
        return split_words(segment)

    def _ids_of_word(self, word: str) -> list[int]:
        """A word's ids: its byte characters merged into vocabulary tokens (computed on a cache miss)."""
        return self._word_ids.put(word, [self.vocab[piece] for piece in self.bpe.pieces(to_byte_chars(word))])

    def tokenize(self, text: str) -> list[str]:
        """Text → tokens (byte characters, no special tokens added)."""
        return [self.ids_to_tokens[i] for i in self.text_to_ids(text)]

    def text_to_ids(self, text: str) -> list[int]:
        """Text → token ids (no special tokens added): one dict lookup per word once words repeat."""
        check_text(text, "text")
        ids: list[int] = []
        cache = self._word_ids
        for i, (segment, _) in enumerate(self._segments(text)):
            if i % 2:
                ids.append(self.vocab[segment])
            elif segment:
                for word in self._words(segment):
                    word_ids = cache.get(word)
                    ids += word_ids if word_ids is not None else self._ids_of_word(word)
        return ids

    def text_to_ids_with_offsets(self, text: str) -> tuple[list[int], list[Span]]:
        """Text → token ids and each token's (start, end) character span in ``text`` (see ``byte_offsets.py``)."""
        check_text(text, "text")
        ids: list[int] = []
        spans: list[Span] = []
        for i, (segment, start) in enumerate(self._segments(text)):
            if i % 2:
                ids.append(self.vocab[segment])
                spans.append((start, start + len(segment)))
                continue
            prefixed = bool(segment) and self.add_prefix_space and not segment.startswith(" ")
            cursor = 0  # in the segment as split, with its added space
            for word in self._words(segment) if segment else []:
                pieces = self.bpe.pieces(to_byte_chars(word))
                ids += [self.vocab[piece] for piece in pieces]
                spans += piece_spans(word, pieces, start + max(cursor - prefixed, 0), prefixed and cursor == 0)
                cursor += len(word)
        return ids, spans

    def trim_offsets(self, ids: list[int], spans: list[Span]) -> list[Span]:
        """Spans as the model's post-processor leaves them: GPT-2 keeps them (RoBERTa trims spaces)."""
        return spans

    # -- tokens → model inputs --------------------------------------------------------------------------

    def _ids_and_spans(self, text: str, offsets: bool) -> tuple[list[int], list[Span] | None]:
        """A text's ids, with their spans (as the post-processor leaves them) when asked."""
        if not offsets:
            return self.text_to_ids(text), None
        ids, spans = self.text_to_ids_with_offsets(text)
        return ids, self.trim_offsets(ids, spans)

    def build_inputs(self, ids_a: list[int], ids_b: list[int] | None, spans_a: list[Span] | None = None,
                     spans_b: list[Span] | None = None) -> Sequence:
        """One sequence with its special tokens: GPT-2 adds none (``A`` or ``A B``)."""
        seq = Sequence()
        seq.append(ids_a, 0, False, spans_a)
        if ids_b is not None:
            seq.append(ids_b, 1, False, spans_b)
        return seq

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        """How many special tokens ``build_inputs`` adds to one text (or a pair)."""
        return len(self.build_inputs([], [] if pair else None).input_ids)

    def encode(
        self,
        text: str,
        text_pair: str | None = None,
        add_special_tokens: bool = True,
        truncation: bool | str = False,
        max_length: int | None = None,
    ) -> list[int]:
        """Text (and an optional pair) → ids, with the model's special tokens by default."""
        return self(text, text_pair, add_special_tokens=add_special_tokens, truncation=truncation,
                    max_length=max_length)["input_ids"]

    def check_can_pad(self) -> None:
        """GPT-2 has no pad token: padding is an error until one is set."""
        if self.pad_token is None:
            raise ValueError(f"padding needs a pad token, and this {type(self).__name__} has none (GPT-2 has none); "
                             "set pad_token (often to the eos token) or pad yourself")

    def _build(self, text: str, pair: str | None, add_special: bool, truncation: bool | str,
               max_length: int | None, offsets: bool = False) -> Sequence:
        """One sequence: tokenize, truncate, add the special tokens."""
        ids_a, spans_a = self._ids_and_spans(text, offsets)
        ids_b, spans_b = self._ids_and_spans(pair, offsets) if pair is not None else (None, None)
        if truncation:
            n_special = self.num_special_tokens_to_add(pair is not None) if add_special else 0
            budget = max_length - n_special
            if budget < 0:
                raise ValueError(f"max_length={max_length} leaves no room for the {n_special} special tokens")
            keep_a, keep_b = rust_truncation_lengths(len(ids_a), len(ids_b) if ids_b is not None else None, budget,
                                                     truncation)
            ids_a, spans_a = ids_a[:keep_a], spans_a[:keep_a] if spans_a else spans_a
            if ids_b is not None:
                ids_b, spans_b = ids_b[:keep_b], spans_b[:keep_b] if spans_b else spans_b
        if add_special:
            seq = self.build_inputs(ids_a, ids_b, spans_a, spans_b)
        else:
            seq = Sequence()
            seq.append(ids_a, 0, False, spans_a)
            if ids_b is not None:
                seq.append(ids_b, 0, False, spans_b)
        if len(seq.input_ids) > self.model_max_length and not truncation:
            logger.warning("a sequence has %d tokens, more than model_max_length=%d; the model will refuse it "
                           "unless truncation=True", len(seq.input_ids), self.model_max_length)
        return seq

    # -- ids → text --------------------------------------------------------------------------------------

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """Tokens → text: their bytes joined and decoded (invalid UTF-8 handled per ``errors``, "replace": �)."""
        return from_byte_chars(tokens).decode("utf-8", errors=self.errors)

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """Ids → text, exactly the text encoded (special tokens kept unless skipped)."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        if isinstance(ids, int):
            ids = [ids]
        return self.convert_tokens_to_string(self.convert_ids_to_tokens(ids, skip_special_tokens))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(vocab_size={len(self.vocab)}, merges={len(self.merges)}, "
                f"add_prefix_space={self.add_prefix_space})")
