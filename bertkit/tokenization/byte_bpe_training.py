"""Training byte-level BPE (GPT-2 / RoBERTa): text → words of byte characters → merges, as the ``tokenizers`` library.

1. Count words: each text (a line of a file, newline kept) is split with GPT-2's pattern, each word written as its
   byte characters (``byte_level.py``) and counted.
2. The starting vocabulary: the special tokens, then all 256 byte characters in code point order, so any text can be
   encoded whatever the corpus held.
3. Merges: every word starts as its byte characters; each step merges the most frequent adjacent pair everywhere,
   making a token, until the vocabulary is full or no pair occurs ``min_frequency`` times.

The merges are the ones ``tokenizers.ByteLevelBPETokenizer`` learns with the same settings, because the bookkeeping
follows its ``BpeTrainer`` step for step: ties between equally frequent pairs go to the pair of smaller token ids
(ids are given in the order above, then in order of creation); the queue of pairs is updated lazily (a popped pair
whose count went down since it was queued is queued again with its current count); and each queued pair carries the
set of words it was seen in when queued, where the merge is then applied. That last detail matters only when a merge
makes a token that already exists (``"a" + "bc"`` after ``"ab" + "c"``); copying it keeps the merges identical.

Why it is fast in pure Python: the work is on distinct words weighted by their counts, and after a merge only the
words that held the pair are revisited; pair counts change by the differences the merge makes.
"""

from __future__ import annotations

import heapq
import os
from collections import Counter
from collections.abc import Iterable
from itertools import count as counter
from itertools import pairwise

from tqdm.auto import tqdm

from .byte_level import alphabet, split_words, to_byte_chars
from .gpt2 import GPT2Tokenizer
from .roberta import RobertaTokenizer
from .training import read_lines

Pair = tuple[int, int]


def count_words(texts: Iterable[str], add_prefix_space: bool = False, progress: bool = True) -> Counter[str]:
    """Counts of the byte-character words of the texts (each text split on its own, as the tokenizer will)."""
    pieces: Counter[str] = Counter()
    for text in tqdm(texts, desc="counting words", unit=" lines", disable=not progress, mininterval=1):
        if add_prefix_space and not text.startswith(" "):
            text = " " + text
        pieces.update(split_words(text))
    return Counter({to_byte_chars(piece): n for piece, n in pieces.items()})


def initial_tokens(special_tokens: Iterable[str]) -> list[str]:
    """The vocabulary before any merge: special tokens (ids from 0, repeats dropped), then the 256 byte characters."""
    tokens = list(dict.fromkeys(special_tokens))
    known = set(tokens)
    return tokens + [char for char in alphabet() if char not in known]


def merge_in_word(word: list[int], a: int, b: int, new: int) -> list[tuple[Pair, int]]:
    """Replace each ``a b`` in ``word`` (in place, left to right) by ``new``; return the pair count changes.

    Each merge removes the pairs it breaks (``x a``, ``b y``) and adds the ones it makes (``x new``, ``new y``); the
    count of ``a b`` itself is left as it is, as ``tokenizers`` does, since that pair is never queued again.
    """
    changes: list[tuple[Pair, int]] = []
    i = 0
    while i < len(word) - 1:
        if word[i] == a and word[i + 1] == b:
            if i > 0:
                before = word[i - 1]
                changes += (((before, a), -1), ((before, new), 1))
            word[i:i + 2] = [new]
            if i < len(word) - 1:
                after = word[i + 1]
                changes += (((b, after), -1), ((new, after), 1))
        i += 1
    return changes


class PairQueue:
    """Words as lists of token ids with their counts, every adjacent pair's count, and a max-heap of pairs."""

    def __init__(self, word_counts: dict[str, int], token_ids: dict[str, int]):
        self.words = [[token_ids[c] for c in word] for word in word_counts]
        self.counts = list(word_counts.values())
        self.pair_counts: dict[Pair, int] = {}
        where: dict[Pair, set[int]] = {}
        for index, (word, n) in enumerate(zip(self.words, self.counts, strict=True)):
            for pair in pairwise(word):
                self.pair_counts[pair] = self.pair_counts.get(pair, 0) + n
                where.setdefault(pair, set()).add(index)
        self.order = counter()  # breaks ties between identical entries first-in first-out, never comparing sets
        self.heap: list[tuple[int, int, int, int, set[int]]] = []
        self.push_all(where)

    def push_all(self, where: dict[Pair, set[int]]) -> None:
        """Queue each pair that still occurs, with the words it was seen in."""
        for pair, words in where.items():
            n = self.pair_counts[pair]
            if n > 0:  # heapq is a min-heap: the highest count first, then the smallest pair of ids
                heapq.heappush(self.heap, (-n, pair[0], pair[1], next(self.order), words))

    def pop(self) -> tuple[Pair, int, set[int]] | None:
        """The most frequent pair with its current count and words; None when the queue is empty."""
        while self.heap:
            negative, a, b, _, words = heapq.heappop(self.heap)
            current = self.pair_counts[(a, b)]
            if -negative == current:
                return (a, b), current, words
            heapq.heappush(self.heap, (-current, a, b, next(self.order), words))  # went down: queue it again
        return None

    def merge(self, pair: Pair, new: int, words: set[int]) -> None:
        """Merge ``pair`` into ``new`` in the given words and queue the pairs this makes."""
        a, b = pair
        where: dict[Pair, set[int]] = {}
        pair_counts = self.pair_counts
        for index in words:
            word = self.words[index]
            if a not in word:  # the word set may hold words that lost the pair since it was queued
                continue
            n = self.counts[index]
            for changed, sign in merge_in_word(word, a, b, new):
                pair_counts[changed] = pair_counts.get(changed, 0) + sign * n
                if sign > 0:
                    where.setdefault(changed, set()).add(index)
        self.push_all(where)


def learn_byte_merges(
    word_counts: dict[str, int],
    tokens: list[str],
    vocab_size: int,
    min_frequency: int = 2,
    progress: bool = True,
) -> tuple[list[str], list[tuple[str, str]]]:
    """The vocabulary (``tokens`` grown by merging, up to ``vocab_size``) and the merges, in the order learned."""
    token_ids = {token: i for i, token in enumerate(tokens)}
    tokens = list(tokens)
    queue = PairQueue(word_counts, token_ids)
    merges: dict[tuple[str, str], None] = {}  # ordered; a pair merged twice keeps its later place, as tokenizers
    with tqdm(total=max(vocab_size - len(tokens), 0), desc="byte-level BPE merges", unit="tok",
              disable=not progress) as bar:
        while len(token_ids) < vocab_size:
            top = queue.pop()
            if top is None:
                break
            (a, b), n, words = top
            if n < max(1, min_frequency):
                break
            name = tokens[a] + tokens[b]
            new = token_ids.get(name)
            if new is None:
                new = token_ids[name] = len(tokens)
                tokens.append(name)
                bar.update()
            merges.pop((tokens[a], tokens[b]), None)
            merges[(tokens[a], tokens[b])] = None
            queue.merge((a, b), new, words)
    return tokens, list(merges)


STYLES = {  # the special tokens each style trains with, in id order (RoBERTa's ids 0-3 as in roberta-base)
    "gpt2": ("<|endoftext|>",),
    "roberta": ("<s>", "<pad>", "</s>", "<unk>", "<mask>"),
}


def train_byte_bpe(
    files: Iterable[str | os.PathLike],
    output_dir: str | os.PathLike,
    vocab_size: int = 30000,
    min_frequency: int = 2,
    style: str = "roberta",
    add_prefix_space: bool = False,
    progress: bool = True,
) -> GPT2Tokenizer:
    """Learn byte-level BPE from text files and save ``vocab.json`` + ``merges.txt`` + ``tokenizer_config.json``.

    ``style``: "gpt2" (``<|endoftext|>``, no tokens added around a text) or "roberta" (``<s> A </s>``, with
    ``<pad> <unk> <mask>``). Each line of the files (its newline kept) is one text, as ``tokenizers`` trains.
    """
    return train_byte_bpe_from_texts(read_lines(files), output_dir, vocab_size, min_frequency, style,
                                     add_prefix_space, progress)


def train_byte_bpe_from_texts(
    texts: Iterable[str],
    output_dir: str | os.PathLike,
    vocab_size: int = 30000,
    min_frequency: int = 2,
    style: str = "roberta",
    add_prefix_space: bool = False,
    progress: bool = True,
) -> GPT2Tokenizer:
    """``train_byte_bpe`` on texts in memory (each one split on its own)."""
    if style not in STYLES:
        raise ValueError(f"style must be one of {sorted(STYLES)}, got {style!r}")
    tokens = initial_tokens(STYLES[style])
    if vocab_size < len(tokens):
        raise ValueError(f"vocab_size={vocab_size} is smaller than the {len(STYLES[style])} special token(s) + the "
                         f"256 byte characters = {len(tokens)}; byte-level BPE needs at least {len(tokens)}")
    word_counts = count_words(texts, add_prefix_space, progress)
    if not word_counts:
        raise ValueError("the training corpus holds no text (empty files?)")
    tokens, merges = learn_byte_merges(word_counts, tokens, vocab_size, min_frequency, progress)
    tokenizer_class = RobertaTokenizer if style == "roberta" else GPT2Tokenizer
    tokenizer = tokenizer_class(vocab={t: i for i, t in enumerate(tokens)}, merges=merges,
                                add_prefix_space=add_prefix_space)
    tokenizer.save_pretrained(output_dir)
    return tokenizer
