"""SentencePiece's BPE model: characters merged pairwise, the pair whose merged piece scores highest first.

Unlike GPT-2's BPE (``bpe.py``) there is no merges list: the vocabulary's scores are the merge order (the trainer
gives the n-th merged piece the score -n). A normalised text starts as its characters, except that a user-defined
symbol is one symbol that never merges. Then, repeatedly, the adjacent pair whose concatenation is in the
vocabulary with the highest score is merged (the leftmost on a tie), until no pair is. A resulting piece of type
UNUSED is split back into the two pieces it was merged from. ``dropout`` skips each merge with that probability
(BPE-dropout, SentencePiece's sampling for BPE models).
"""

from __future__ import annotations

import heapq
import random

from .sentencepiece_model import NORMAL, UNUSED, USER_DEFINED
from .sp_normalizer import PrefixMatcher


class SentencePieceBPE:
    """Segments normalised text with a SentencePiece BPE vocabulary."""

    def __init__(self, pieces: list[str], scores: list[float], types: list[int], unk_id: int,
                 user_defined: list[str] = ()):
        usable = (NORMAL, USER_DEFINED, UNUSED)  # the rest (control, unknown, byte) never match text
        self.vocab = {p: i for i, (p, t) in enumerate(zip(pieces, types, strict=True)) if t in usable}
        self.scores, self.types, self.unk_id = scores, types, unk_id
        self.matcher = PrefixMatcher(list(user_defined)) if user_defined else None

    def _symbols(self, text: str) -> tuple[list[str], list[bool]]:
        """The starting symbols: one per character, or one per user-defined symbol (frozen)."""
        symbols, frozen, i = [], [], 0
        while i < len(text):
            symbol = self.matcher.match(text, i) if self.matcher is not None else None
            symbols.append(symbol or text[i])
            frozen.append(symbol is not None)
            i += len(symbol or text[i])
        return symbols, frozen

    def segment(self, text: str, dropout: float = 0.0, rng: random.Random | None = None) -> list[tuple[str, int]]:
        """(piece, id) per piece; a piece outside the vocabulary (an unknown character) gets ``unk_id``."""
        symbols, frozen = self._symbols(text)
        n = len(symbols)
        prev, nxt = list(range(-1, n - 1)), [*range(1, n), -1]
        agenda: list[tuple[float, int, int, str]] = []
        unsplit: dict[str, tuple[str, str]] = {}  # an UNUSED piece → the two pieces it was merged from
        vocab, scores = self.vocab, self.scores

        def consider(left: int, right: int) -> None:
            if left < 0 or right < 0 or frozen[left] or frozen[right]:
                return
            merged = symbols[left] + symbols[right]
            i = vocab.get(merged)
            if i is None:
                return
            heapq.heappush(agenda, (-scores[i], left, right, merged))  # best score first, then leftmost
            if self.types[i] == UNUSED:
                unsplit[merged] = (symbols[left], symbols[right])

        for i in range(1, n):
            consider(i - 1, i)
        rng = rng or random
        while agenda:
            _, left, right, merged = heapq.heappop(agenda)
            if nxt[left] != right or symbols[left] + symbols[right] != merged:
                continue  # a stale pair: one of its symbols has merged since
            if dropout > 0.0 and rng.random() < dropout:
                continue
            symbols[left], symbols[right] = merged, ""
            nxt[left] = nxt[right]
            if nxt[right] >= 0:
                prev[nxt[right]] = left
            consider(prev[left], left)
            consider(left, nxt[left])

        out: list[tuple[str, int]] = []

        def emit(piece: str) -> None:
            i = vocab.get(piece)
            if i is not None and self.types[i] == UNUSED and piece in unsplit:
                emit(unsplit[piece][0])
                emit(unsplit[piece][1])
            else:
                out.append((piece, self.unk_id if i is None else i))

        index = 0 if n else -1
        while index != -1:
            emit(symbols[index])
            index = nxt[index]
        return out
