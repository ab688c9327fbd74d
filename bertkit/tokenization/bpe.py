"""Applying learned BPE merges to one word: repeatedly merge the adjacent pair that was learned earliest.

A word starts as its characters (for byte-level BPE, its byte characters). While any adjacent pair is in the merge
table, the pair with the lowest rank (learned first) is merged, at its leftmost place first: GPT-2's ``bpe()`` and
the ``tokenizers`` library's ``Word.merge_all`` give the same pieces this way. Words repeat, so pieces are cached.
"""

from __future__ import annotations

from itertools import pairwise

from .lookup import BoundedCache

_UNRANKED = float("inf")
_CACHE_LIMIT = 500_000  # words; a cache this full is cleared rather than grown without bound


def read_merges(lines: list[str], source: str) -> list[tuple[str, str]]:
    """Merge rules from merges.txt lines (``"Ġ t"``), skipping the ``#version`` header and blank lines."""
    merges = []
    for number, line in enumerate(lines, 1):
        if (number == 1 and line.startswith("#version")) or not line.strip():
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"{source} line {number} is not a merge rule (two tokens separated by one space): "
                             f"{line!r:.80}")
        merges.append((parts[0], parts[1]))
    return merges


def rank_table(merges: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Each merge rule → its rank (0 = learned first); a rule listed twice keeps its first rank."""
    ranks: dict[tuple[str, str], int] = {}
    for rank, pair in enumerate(merges):
        ranks.setdefault(pair, rank)
    return ranks


class BPE:
    """Splits words into the pieces a merge table makes of them."""

    def __init__(self, merges: list[tuple[str, str]]):
        self.ranks = rank_table(merges)
        self.cache: BoundedCache = BoundedCache(_CACHE_LIMIT)

    def pieces(self, word: str) -> list[str]:
        """The word's pieces after applying every merge it allows (cached)."""
        cached = self.cache.get(word)
        if cached is None:
            cached = self.cache.put(word, self.merge_word(word))
        return cached

    def merge_word(self, word: str) -> list[str]:
        """Merge the lowest-ranked adjacent pair, everywhere from left to right, until no pair has a rank."""
        symbols = list(word)
        ranks = self.ranks
        while len(symbols) > 1:
            best = min(pairwise(symbols), key=lambda pair: ranks.get(pair, _UNRANKED))
            if best not in ranks:
                break
            first, second = best
            merged: list[str] = []
            i = 0
            while i < len(symbols):
                if i + 1 < len(symbols) and symbols[i] == first and symbols[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        return symbols
