"""The numbers ↔ words task: ``1234`` → ``mille deux cent trente-quatre`` and back, in several languages, from the
``num2words`` package (its hand-written grammar of each language is the ground truth).

The split is by number, not by pair: a held-out number is never seen in training in any language or direction, so
exact match on it measures whether the model learned the grammar of numerals rather than memorised strings.

Text is cut into pieces (``tokens: words``): digits one by one, words with their leading space (`` hundred``),
hyphens and commas alone, and German's one-word numerals at ``hundert`` / ``tausend`` / ``und`` (``neunhundert
dreiundsiebzig`` → ``neun hundert drei und siebzig``), so that an unseen number is made of pieces seen in training;
joining the pieces gives the text back exactly. ``tokens: chars`` reads characters instead (a harder task: about four
times longer outputs). Each source starts with two tags: the language and the direction (``<words>``: write the
number out, ``<digits>``: read it back).
"""

from __future__ import annotations

import json
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_text_atomic

SPECIALS = ("[PAD]", "[BOS]", "[EOS]", "[UNK]")  # ids 0…3: padding, the decoder's start, end of text, unknown
DIRECTIONS = ("words", "digits")  # "words": digits → words; "digits": words → digits
VOCAB_FILE = "vocab.json"
LEVELS = ("words", "chars")
_WORDS = re.compile(r"\s*[^\s\-,]+|[\-,]")  # a word with its leading space, or a hyphen / comma
_COMPOUNDS = {"de": re.compile(r"(hundert|tausend|und)")}  # one-word numerals, cut where their parts meet


def split_text(text: str, language: str, level: str = "words") -> list[str]:
    """The pieces of a text (``"".join`` gives it back): see the module's docstring."""
    if level == "chars" or text.isdigit():
        return list(text)
    pieces = []
    for word in _WORDS.findall(text):
        compound = _COMPOUNDS.get(language)
        pieces += [p for p in compound.split(word) if p] if compound else [word]
    return pieces


def num2words_function():
    """``num2words.num2words``, or a clear error naming the package and the extra that installs it."""
    try:
        from num2words import num2words
    except ImportError:
        raise ValueError("the numbers task needs the num2words package: pip install 'bertkit[seq2seq]' (or pip "
                         "install num2words)") from None
    return num2words


def split_numbers(max_number: int, heldout_fraction: float, seed: int = 0) -> tuple[list[int], list[int]]:
    """Numbers 0 … max_number - 1 split at random into (training, held-out); held-out ones are never trained on."""
    if max_number < 10:
        raise ValueError(f"max_number must be at least 10, got {max_number}")
    if not 0.0 < heldout_fraction < 1.0:
        raise ValueError(f"heldout_fraction must lie in (0, 1), got {heldout_fraction}")
    numbers = list(range(max_number))
    random.Random(seed).shuffle(numbers)
    cut = max(1, round(heldout_fraction * max_number))
    return sorted(numbers[cut:]), sorted(numbers[:cut])


@dataclass(frozen=True)
class Pair:
    """One example: the source text (after its tags), the target text, and what it is."""

    language: str
    direction: str
    number: int
    source: str
    target: str


def number_pairs(numbers: list[int], languages: list[str], directions: tuple[str, ...] = DIRECTIONS) -> list[Pair]:
    """Every (number, language, direction) pair; an unknown language or direction is a clear error."""
    to_words = num2words_function()
    for direction in directions:
        if direction not in DIRECTIONS:
            raise ValueError(f"unknown direction {direction!r}; choose from {DIRECTIONS}")
    pairs = []
    for language in languages:
        try:
            words = [to_words(n, lang=language) for n in numbers]
        except NotImplementedError:
            raise ValueError(f"num2words has no language {language!r}") from None
        for number, text in zip(numbers, words, strict=True):
            for direction in directions:
                digits = str(number)
                source, target = (digits, text) if direction == "words" else (text, digits)
                pairs.append(Pair(language, direction, number, source, target))
    return pairs


class PieceVocab:
    """Pieces (or characters) ↔ ids, after the special tokens and the tags (``<en>``, ``<words>``, …); a piece not
    in the vocabulary is spelled out in characters."""

    def __init__(self, tokens: list[str], level: str = "words"):
        if list(tokens[:len(SPECIALS)]) != list(SPECIALS):
            raise ValueError(f"a piece vocabulary starts with {SPECIALS}")
        if level not in LEVELS:
            raise ValueError(f"tokens must be one of {LEVELS}, got {level!r}")
        self.level = level
        self.tokens = list(tokens)
        self.ids = {token: i for i, token in enumerate(self.tokens)}
        self.pad, self.bos, self.eos, self.unk = range(len(SPECIALS))

    @classmethod
    def build(cls, pairs: list[Pair], languages: list[str], level: str = "words") -> PieceVocab:
        """The specials, one tag per language and direction, every character of the pairs' texts and (``words``)
        every piece, with and without its leading space."""
        tags = [f"<{language}>" for language in languages] + [f"<{d}>" for d in DIRECTIONS]
        chars = sorted({c for pair in pairs for c in pair.source + pair.target})
        pieces = set()
        if level == "words":
            for pair in pairs:
                for text in (pair.source, pair.target):
                    pieces |= {p.strip() for p in split_text(text, pair.language)} - {""}
            pieces = {v for p in pieces for v in (p, " " + p)} - set(chars)
        return cls([*SPECIALS, *tags, *chars, *sorted(pieces)], level)

    def __len__(self) -> int:
        return len(self.tokens)

    def encode_source(self, pair: Pair) -> list[int]:
        """``<lang> <direction> p i e c e s [EOS]``."""
        tags = [self.ids[f"<{pair.language}>"], self.ids[f"<{pair.direction}>"]]
        return tags + self.encode(pair.source, pair.language) + [self.eos]

    def encode(self, text: str, language: str = "") -> list[int]:
        """Piece ids; an unknown piece spelled in characters (unknown characters: ``[UNK]``)."""
        ids = []
        for piece in split_text(text, language, self.level):
            ids += [self.ids[piece]] if piece in self.ids else [self.ids.get(c, self.unk) for c in piece]
        return ids

    def decode(self, ids: list[int]) -> str:
        """The text of generated ids (pieces joined): stops at ``[EOS]``, skips the other specials."""
        chars = []
        for i in ids:
            if i == self.eos:
                break
            if i >= len(SPECIALS):
                chars.append(self.tokens[i])
        return "".join(chars)

    def save_pretrained(self, folder: str | os.PathLike) -> None:
        """Write ``vocab.json`` (the tokens in id order) next to a model."""
        values = {"level": self.level, "tokens": self.tokens}
        write_text_atomic(Path(folder) / VOCAB_FILE, json.dumps(values, ensure_ascii=False) + "\n")

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike) -> PieceVocab:
        """Read a folder's ``vocab.json``."""
        path = Path(folder) / VOCAB_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{folder} has no {VOCAB_FILE} (a model of `make seq2seq-numbers`?)")
        values = json.loads(path.read_text(encoding="utf-8"))
        return cls(values["tokens"], values["level"])
