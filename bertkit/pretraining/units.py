"""ERNIE's knowledge masking units: phrases and entities masked whole (``masking: phrase`` / ``entity``).

A unit is a run of words the masking treats as one word: its tokens share one word start, so ``masking.py``'s word
grouping (the one whole-word masking uses) masks all of it or none of it, with the 80/10/10 rule per token. Units
come from a user's list (``units_file``: one phrase or entity per line), matched in each sentence's text — longest
first, left to right, only where the match starts and ends on word boundaries — or, for Chinese phrases without a
list, from jieba's words (``word_boundaries: jieba``). A unit is matched inside one sentence of one document, so it
never spans two documents (nor two sentences).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..tokenization import BertTokenizer
from .instances import Sentence


def load_units(path: str | os.PathLike) -> list[str]:
    """The phrases / entities of a list file, one per line (blank lines skipped, surrounding spaces removed)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"units_file {path} does not exist (a list of phrases or entities, one per line)")
    units = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(f"{path}:{number} is not UTF-8 text") from None
            if line.strip():
                units.append(" ".join(line.split()))
    if not units:
        raise ValueError(f"units_file {path} holds no phrase or entity (one per line)")
    return units


class UnitMatcher:
    """Longest-first matching of a unit list in a text (case-insensitively when the tokenizer lowercases)."""

    def __init__(self, units: list[str], lowercase: bool = False):
        self.lowercase = lowercase
        self.by_first: dict[str, list[str]] = {}
        for unit in sorted(set(self.fold(u) for u in units), key=len, reverse=True):
            self.by_first.setdefault(unit[0], []).append(unit)

    def fold(self, text: str) -> str:
        """The text as compared: lowercased where that keeps its length (offsets must stay the text's)."""
        lowered = text.lower()
        return lowered if self.lowercase and len(lowered) == len(text) else text

    def spans(self, text: str, starts: set[int], ends: set[int]) -> list[tuple[int, int]]:
        """Non-overlapping (start, end) character spans of units that begin in ``starts`` and end in ``ends``."""
        folded, found, position = self.fold(text), [], 0
        while position < len(folded):
            match = next((u for u in self.by_first.get(folded[position], ()) if position in starts
                          and folded.startswith(u, position) and position + len(u) in ends), None)
            if match is None:
                position += 1
                continue
            found.append((position, position + len(match)))
            position += len(match)
        return found


def unit_sentence(text: str, base: Sentence, offsets: list[tuple[int, int]], matcher: UnitMatcher) -> Sentence:
    """``base`` (the sentence's ids and word starts) with each matched unit made one word: its first token starts
    it, the rest continue it. A unit must start and end where words do (not inside a word)."""
    starts = {span[0] for span, first in zip(offsets, base.word_starts, strict=True) if first}
    ends = {offsets[i][1] for i in range(len(offsets)) if i + 1 == len(offsets) or base.word_starts[i + 1]}
    word_starts = list(base.word_starts)
    for start, end in matcher.spans(text, starts, ends):
        inside = [i for i, span in enumerate(offsets) if start <= span[0] and span[1] <= end]
        for i in inside[1:]:
            word_starts[i] = False
    return Sentence(base.ids, word_starts)


def tokenizer_lowercases(tokenizer: BertTokenizer) -> bool:
    """Whether the tokenizer lowercases its input (then units match whatever their case)."""
    return bool(getattr(getattr(tokenizer, "basic", None), "do_lower_case", False))
