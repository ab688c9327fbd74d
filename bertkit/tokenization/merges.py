"""Learning subword merges from a table of distinct words: WordPiece's likelihood score or BPE's frequency.

Every word starts as its characters, the first bare and the rest ``##``-prefixed ("hug" → h ##u ##g). Each step
merges one adjacent pair of symbols everywhere it occurs, making a new symbol (h + ##u → hu, ##u + ##g → ##ug):

- ``bpe``: the most frequent pair;
- ``wordpiece``: the pair with the highest ``freq(ab) / (freq(a) * freq(b))`` (google-research/HF's rule: the merge
  that most raises the corpus likelihood under a unigram model), so pairs of parts that rarely occur apart win.

Why it is fast in pure Python: it works on distinct words weighted by their counts, keeps for every pair its count
and the words that hold it, and after a merge revisits only those words. The best pair comes from a heap with lazy
deletion: whenever a pair's key changes a fresh entry is pushed, and a popped entry that no longer matches its pair's
current key is dropped.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable
from itertools import pairwise

from tqdm.auto import tqdm

from .wordpiece import CONTINUATION

MODEL_TYPES = ("wordpiece", "bpe")
Pair = tuple[int, int]


class _MergeTable:
    """Words as lists of symbol ids, with pair counts, pair → words and (for WordPiece) symbol counts."""

    def __init__(self, word_counts: dict[str, int], model_type: str, min_frequency: int):
        self.model_type = model_type
        self.min_frequency = max(1, min_frequency)
        self.names: list[str] = []
        self.ids: dict[str, int] = {}
        self.symbol_freq: list[int] = []
        self.words: list[list[int]] = []
        self.freqs: list[int] = []
        for word, count in sorted(word_counts.items()):
            symbols = [self.symbol(word[0])] + [self.symbol(CONTINUATION + c) for c in word[1:]]
            for s in symbols:
                self.symbol_freq[s] += count
            if len(symbols) > 1:  # single-symbol words count towards symbol frequencies but hold no pair
                self.words.append(symbols)
                self.freqs.append(count)
        self.pair_count: Counter[Pair] = Counter()
        self.pair_words: dict[Pair, set[int]] = defaultdict(set)
        self.pairs_with: dict[int, set[Pair]] = defaultdict(set)  # symbol → live pairs holding it (WordPiece)
        for index, (symbols, count) in enumerate(zip(self.words, self.freqs, strict=True)):
            for pair in pairwise(symbols):
                self.pair_count[pair] += count
                self.pair_words[pair].add(index)
        for a, b in self.pair_count:
            self.pairs_with[a].add((a, b))
            self.pairs_with[b].add((a, b))
        self.heap: list[tuple] = []
        for pair in self.pair_count:
            self.push(pair)

    def symbol(self, name: str) -> int:
        """The id of a symbol, created on first sight."""
        index = self.ids.get(name)
        if index is None:
            index = self.ids[name] = len(self.names)
            self.names.append(name)
            self.symbol_freq.append(0)
        return index

    def key(self, pair: Pair) -> tuple:
        """Heap order (smallest first): best score, then higher count, then alphabetical, for determinism."""
        a, b = pair
        count = self.pair_count[pair]
        if self.model_type == "bpe":
            return (-count, self.names[a], self.names[b], pair)
        score = count / (self.symbol_freq[a] * self.symbol_freq[b])
        return (-score, -count, self.names[a], self.names[b], pair)

    def push(self, pair: Pair) -> None:
        if self.pair_count.get(pair, 0) >= self.min_frequency:
            heapq.heappush(self.heap, self.key(pair))

    def best_pair(self) -> Pair | None:
        """The pair to merge next, or None when no pair reaches ``min_frequency``."""
        if len(self.heap) > 4 * len(self.pair_count) + 100_000:  # too many stale entries: rebuild
            self.heap = []
            for pair in self.pair_count:
                self.push(pair)
        while self.heap:
            entry = heapq.heappop(self.heap)
            pair = entry[-1]
            if pair in self.pair_count and self.key(pair) == entry:
                return pair
        return None

    def merge(self, pair: Pair) -> str:
        """Merge ``pair`` in every word that holds it; return the new symbol's name."""
        a, b = pair
        merged = self.symbol(self.names[a] + self.names[b][len(CONTINUATION):])
        delta: Counter[Pair] = Counter()
        merged_occurrences = 0
        for index in list(self.pair_words[pair]):
            old, count = self.words[index], self.freqs[index]
            new: list[int] = []
            i = 0
            while i < len(old):
                if i + 1 < len(old) and old[i] == a and old[i + 1] == b:
                    new.append(merged)
                    i += 2
                else:
                    new.append(old[i])
                    i += 1
            self.words[index] = new
            merged_occurrences += (len(old) - len(new)) * count
            old_pairs, new_pairs = set(pairwise(old)), set(pairwise(new))
            for p in pairwise(old):
                delta[p] -= count
            for p in pairwise(new):
                delta[p] += count
            for p in old_pairs - new_pairs:
                self.pair_words[p].discard(index)
            for p in new_pairs - old_pairs:
                self.pair_words[p].add(index)
        changed = {p for p, d in delta.items() if d}
        for p in changed:
            total = self.pair_count[p] + delta[p]
            if total > 0:
                self.pair_count[p] = total
                self.pairs_with[p[0]].add(p)
                self.pairs_with[p[1]].add(p)
            else:
                del self.pair_count[p]
                self.pair_words.pop(p, None)
                self.pairs_with[p[0]].discard(p)
                self.pairs_with[p[1]].discard(p)
        self.symbol_freq[a] -= merged_occurrences
        self.symbol_freq[b] -= merged_occurrences
        self.symbol_freq[merged] += merged_occurrences
        if self.model_type == "wordpiece":  # a symbol's count changed: every pair holding it has a new score
            for s in (a, b, merged):
                changed |= self.pairs_with[s]
        for p in changed:
            if p in self.pair_count:
                self.push(p)
        return self.names[merged]


def learn_merges(
    word_counts: dict[str, int],
    num_tokens: int,
    model_type: str = "wordpiece",
    min_frequency: int = 2,
    exclude: Iterable[str] = (),
    progress: bool = True,
) -> list[tuple[str, int]]:
    """Up to ``num_tokens`` new subword tokens in merge order, each with its pair count when it was merged.

    A merge whose result is already a token (in ``exclude`` or made before) is applied but adds nothing.
    """
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type must be one of {MODEL_TYPES}, got {model_type!r}")
    table = _MergeTable(word_counts, model_type, min_frequency)
    seen = set(exclude) | set(table.names)
    learned: list[tuple[str, int]] = []
    with tqdm(total=num_tokens, desc=f"{model_type} merges", unit="tok", disable=not progress) as bar:
        while len(learned) < num_tokens:
            pair = table.best_pair()
            if pair is None:
                break
            count = table.pair_count[pair]
            name = table.merge(pair)
            if name not in seen:
                seen.add(name)
                learned.append((name, count))
                bar.update()
    return learned
