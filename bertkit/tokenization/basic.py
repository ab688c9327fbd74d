"""BERT's BasicTokenizer: text → words, before WordPiece.

The steps are google-research/bert's, each a small named function below:

1. ``clean_text``: drop NUL, U+FFFD and control characters; every whitespace character becomes a space.
2. ``pad_chinese_chars``: put spaces around CJK ideographs, so each becomes a word of its own.
3. split on whitespace into *chunks*; then for each chunk (``normalize_chunk`` + ``split_on_punctuation``):
   NFC, lower-case, strip accents (NFD, drop non-spacing marks), split off every punctuation character.

Everything after step 2 depends on the chunk alone, which is what lets the tokenizer cache a chunk's result.
Steps 1 and 2 run as one ``str.translate`` over a per-character table that fills itself lazily.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

# Ideographs of the CJK blocks (google-research/bert's ranges). Hangul, Hiragana and Katakana are *not* here:
# those scripts separate words with spaces and are treated like any other alphabet.
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


def is_whitespace(char: str) -> bool:
    """Space, tab, newline, carriage return, or any Unicode space separator (Zs)."""
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def is_control(char: str) -> bool:
    """A control/format/unassigned character (category C*), except tab, newline and CR, which count as space."""
    return char not in "\t\n\r" and unicodedata.category(char).startswith("C")


@lru_cache(maxsize=65536)
def is_punctuation(char: str) -> bool:
    """BERT's rule: every non-alphanumeric printable ASCII character, plus Unicode categories P*."""
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def is_chinese_char(char: str) -> bool:
    """A CJK ideograph (see ``_CJK_RANGES``)."""
    cp = ord(char)
    return any(low <= cp <= high for low, high in _CJK_RANGES)


class _CharTable(dict):
    """A ``str.translate`` table for steps 1-2 that computes each character's entry on first sight."""

    def __init__(self, pad_chinese: bool):
        super().__init__()
        self.pad_chinese = pad_chinese

    def __missing__(self, cp: int) -> str | None:
        char = chr(cp)
        if cp == 0 or cp == 0xFFFD or is_control(char):
            entry = None  # deleted
        elif is_whitespace(char):
            entry = " "
        elif self.pad_chinese and is_chinese_char(char):
            entry = f" {char} "
        else:
            entry = char
        self[cp] = entry
        return entry


_TABLES = {True: _CharTable(pad_chinese=True), False: _CharTable(pad_chinese=False)}

# ASCII lines (most English text) only need their rare control characters removed. \x0b, \x0c and \x1c-\x1f are
# whitespace to str.split but controls to BERT: deleted, so they join their neighbours.
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(text: str) -> str:
    """Step 1: drop control characters and map every whitespace character to a space."""
    return text.translate(_TABLES[False])


def pad_chinese_chars(text: str) -> str:
    """Step 2: surround every CJK ideograph with spaces."""
    return "".join(f" {c} " if is_chinese_char(c) else c for c in text)


def clean_and_split(text: str, tokenize_chinese_chars: bool = True) -> list[str]:
    """Steps 1-2 in one pass, then split on whitespace into chunks."""
    if text.isascii():
        return (_ASCII_CONTROL.sub("", text) if _ASCII_CONTROL.search(text) else text).split()
    return text.translate(_TABLES[tokenize_chinese_chars]).split()


def strip_accents(text: str) -> str:
    """Decompose (NFD) and drop the non-spacing marks (category Mn): 'é' → 'e'."""
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def normalize_chunk(chunk: str, lower_case: bool, accents: bool | None) -> str:
    """NFC, then lower-case and strip accents as configured (``accents=None`` strips when lower-casing)."""
    if chunk.isascii():
        return chunk.lower() if lower_case else chunk
    chunk = unicodedata.normalize("NFC", chunk)
    if lower_case:
        chunk = chunk.lower()
        if accents is not False:
            chunk = strip_accents(chunk)
    elif accents:
        chunk = strip_accents(chunk)
    return chunk


def split_on_punctuation(word: str) -> list[str]:
    """Make each punctuation character a token of its own: "don't!" → ["don", "'", "t", "!"]."""
    pieces: list[str] = []
    start = 0
    for i, char in enumerate(word):
        if is_punctuation(char):
            if start < i:
                pieces.append(word[start:i])
            pieces.append(char)
            start = i + 1
    if start < len(word):
        pieces.append(word[start:])
    return pieces


class BasicTokenizer:
    """Text → words: cleaning, CJK splitting, lower-casing, accent stripping, punctuation splitting."""

    def __init__(
        self,
        do_lower_case: bool = True,
        never_split: Iterable[str] | None = None,
        tokenize_chinese_chars: bool = True,
        strip_accents: bool | None = None,
    ):
        self.do_lower_case = do_lower_case
        self.never_split = set(never_split or ())
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.strip_accents = strip_accents

    def chunks(self, text: str) -> list[str]:
        """Steps 1-2: the whitespace-separated chunks of ``text``."""
        return clean_and_split(text, self.tokenize_chinese_chars)

    def split_chunk(self, chunk: str, never_split: set[str] | frozenset[str] = frozenset()) -> list[str]:
        """Step 3 for one chunk: normalise it and split off punctuation, unless it must never be split."""
        if chunk in never_split or chunk in self.never_split:
            return [chunk]
        word = normalize_chunk(chunk, self.do_lower_case, self.strip_accents)
        if word in never_split or word in self.never_split:
            return [word]
        # Lower-casing and accent stripping never create whitespace, but str.split also drops empty words.
        return [piece for part in word.split() for piece in split_on_punctuation(part)]

    def tokenize(self, text: str, never_split: Iterable[str] | None = None) -> list[str]:
        """All steps: ``text`` → words."""
        extra = set(never_split or ())
        return [word for chunk in self.chunks(text) for word in self.split_chunk(chunk, extra)]
