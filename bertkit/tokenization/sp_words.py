"""Word-by-word segmentation with a cache: real text repeats its words, so each is segmented once.

When no piece holds ``▁`` past its first character, no piece crosses the start of a word, so each word (a run of
normalised text from one ``▁`` to the next) can be segmented alone and remembered. Unigram adds scores in float32
from the start of the text, so the running score can tip a close decision: a word whose best segmentation won by
less than float32's rounding at the running score is segmented again from that score, as SentencePiece does.
"""

from __future__ import annotations

import math

from .sp_normalizer import SPACE_SYMBOL
from .unigram_lattice import f32

CACHE_LIMIT = 500_000  # words
WORDWISE_LIMIT = 3000  # characters; beyond, the running score may reach SentencePiece's reset at 100,000


def too_close(gap: float, length: int, base: float, total: float) -> bool:
    """Whether a word's closest decision (``gap``) may be tipped by float32 rounding at running score ``base``."""
    return gap <= 4.8e-7 * (length + 1) * (abs(base) + abs(total) + 1.0)


def words(normalized: str):
    """Yield (start, word) for each run from one ``▁`` to the next."""
    start, n = 0, len(normalized)
    while start < n:
        end = normalized.find(SPACE_SYMBOL, start + 1)
        end = n if end < 0 else end
        yield start, normalized[start:end]
        start = end


class WordSegmenter:
    """A SentencePiece model's segmentation, word by word through two caches (spans, and ids alone)."""

    def __init__(self, processor):
        self.sp = processor
        self.unigram = processor.unigram if processor.model_type == "unigram" else None
        self.spans: dict[str, tuple[list, list[float], float, float]] = {}
        self.ids: dict[str, tuple[list[int], list[float], float, float]] = {}

    def segment(self, normalized: str) -> list[tuple[str, int, int, int]]:
        """(piece, id, start, end) over the normalised text, unknown pieces not yet expanded."""
        out: list[tuple[str, int, int, int]] = []
        unigram, cache, base = self.unigram, self.spans, 0.0
        for start, word in words(normalized):
            found = cache.get(word)
            if found is None:
                if len(cache) >= CACHE_LIMIT:
                    cache.clear()
                found = cache[word] = self._remember(word)
            segments, steps, gap, total = found
            if unigram is not None:
                if too_close(gap, len(word), base, total):
                    path = unigram.best_path(word, base)[0]
                    segments = [(word[s:e], i, s, e) for s, e, i in path]
                    steps = unigram.step_scores(word, path)
                for step in steps:
                    base = f32(base + step)
            out += [(p, i, s + start, e + start) for p, i, s, e in segments] if start else segments
        return out

    def _remember(self, word: str) -> tuple[list, list[float], float, float]:
        """A word's segmentation (from score 0), its pieces' scores, its closest decision and its score."""
        if self.unigram is None:
            return self.sp._segment_run(word), [], math.inf, 0.0
        path, total, gap = self.unigram.best_path(word)
        return [(word[s:e], i, s, e) for s, e, i in path], self.unigram.step_scores(word, path), gap, total

    def encode_ids(self, normalized: str) -> list[int]:
        """The ids of the normalised text, unknown pieces expanded, with no spans built.

        The running score is tracked by an upper bound of its size (the sum of the pieces' |score|, in float64);
        only when that bound calls a word too close is the exact float32 score replayed from the steps taken.
        """
        first, *rest = normalized.split(SPACE_SYMBOL)
        spelled = [SPACE_SYMBOL + word for word in rest]  # the same runs as ``words``, faster
        if first:
            spelled.insert(0, first)
        out: list[int] = []
        unigram, cache, unk, merge = self.unigram, self.ids, self.sp.unk_id, not self.sp.byte_fallback
        bound, trail = 0.0, []
        for word in spelled:
            found = cache.get(word)
            if found is None:
                if len(cache) >= CACHE_LIMIT:
                    cache.clear()
                found = cache[word] = self._remember_ids(word)
            ids, steps, limit, size = found
            if unigram is not None:
                if bound >= limit:  # too close at this running score: segment again from the exact score
                    base = 0.0
                    for taken in trail:
                        for step in taken:
                            base = f32(base + step)
                    path = unigram.best_path(word, base)[0]
                    ids = self._expanded([(word[s:e], i, s, e) for s, e, i in path])
                    steps = unigram.step_scores(word, path)
                    size = sum(map(abs, steps)) * 1.001
                trail.append(steps)
                bound += size
            if ids[0] == unk and merge and out and out[-1] == unk:  # a run of unknown pieces is one <unk>
                out += ids[1:]
            else:
                out += ids
        return out

    def _remember_ids(self, word: str) -> tuple[list[int], list[float], float, float]:
        """A word's ids (unknown pieces expanded), its pieces' scores, the smallest running-score bound at which
        its decision is too close (``too_close`` solved for ``base``), and its |score| sum, a little enlarged
        because float32's rounding may make the exact running score a little larger."""
        if self.unigram is None:
            return self._expanded(self.sp._segment_run(word)), [], math.inf, 0.0
        path, total, gap = self.unigram.best_path(word)
        ids = [i for _, _, i in path]
        if self.sp.unk_id in ids:
            ids = self._expanded([(word[s:e], i, s, e) for s, e, i in path])
        steps = self.unigram.step_scores(word, path)
        limit = gap / (4.8e-7 * (len(word) + 1)) - abs(total) - 1.0
        return ids, steps, limit, sum(map(abs, steps)) * 1.001

    def _expanded(self, segments) -> list[int]:
        """The ids of segments with unknown pieces expanded (bytes, or a run as one ``<unk>``)."""
        return [i for _, i, _, _ in self.sp.expand(segments)]
