"""The numbers ↔ words task: ``1234`` → ``mille deux cent trente-quatre`` and back, in several languages, from the
``num2words`` package (its hand-written grammar of each language is the ground truth).

The split is by number, not by pair: a held-out number is never seen in training in any language or direction, so
exact match on it measures whether the model learned the grammar of numerals rather than memorised strings. Text is
read character by character (German writes 1234 as one word, so a word vocabulary would not cover unseen numbers);
each source starts with two tags: the language and the direction (``<words>``: write the number out, ``<digits>``:
read it back).
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_text_atomic

SPECIALS = ("[PAD]", "[BOS]", "[EOS]", "[UNK]")  # ids 0…3: padding, the decoder's start, end of text, unknown
DIRECTIONS = ("words", "digits")  # "words": digits → words; "digits": words → digits
VOCAB_FILE = "vocab.json"


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


class CharVocab:
    """Characters ↔ ids, after the special tokens and the tags (``<en>``, ``<words>``, …)."""

    def __init__(self, tokens: list[str]):
        if list(tokens[:len(SPECIALS)]) != list(SPECIALS):
            raise ValueError(f"a character vocabulary starts with {SPECIALS}")
        self.tokens = list(tokens)
        self.ids = {token: i for i, token in enumerate(self.tokens)}
        self.pad, self.bos, self.eos, self.unk = range(len(SPECIALS))

    @classmethod
    def build(cls, pairs: list[Pair], languages: list[str]) -> CharVocab:
        """The specials, one tag per language and direction, and every character of the pairs' texts."""
        tags = [f"<{language}>" for language in languages] + [f"<{d}>" for d in DIRECTIONS]
        chars = sorted({c for pair in pairs for c in pair.source + pair.target})
        return cls([*SPECIALS, *tags, *chars])

    def __len__(self) -> int:
        return len(self.tokens)

    def encode_source(self, pair: Pair) -> list[int]:
        """``<lang> <direction> c h a r s [EOS]``."""
        tags = [self.ids[f"<{pair.language}>"], self.ids[f"<{pair.direction}>"]]
        return tags + self.encode(pair.source) + [self.eos]

    def encode(self, text: str) -> list[int]:
        """Character ids (unknown characters: ``[UNK]``)."""
        return [self.ids.get(c, self.unk) for c in text]

    def decode(self, ids: list[int]) -> str:
        """The text of generated ids: stops at ``[EOS]``, skips the other specials."""
        chars = []
        for i in ids:
            if i == self.eos:
                break
            if i >= len(SPECIALS):
                chars.append(self.tokens[i])
        return "".join(chars)

    def save_pretrained(self, folder: str | os.PathLike) -> None:
        """Write ``vocab.json`` (the tokens in id order) next to a model."""
        write_text_atomic(Path(folder) / VOCAB_FILE, json.dumps(self.tokens, ensure_ascii=False) + "\n")

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike) -> CharVocab:
        """Read a folder's ``vocab.json``."""
        path = Path(folder) / VOCAB_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{folder} has no {VOCAB_FILE} (a model of `make seq2seq-numbers`?)")
        return cls(json.loads(path.read_text(encoding="utf-8")))
