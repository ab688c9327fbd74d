"""Data augmentation for task distillation (Tang et al. 2019, "Distilling Task-Specific Knowledge from BERT into
Simple Neural Networks"; TinyBERT augments for the same reason): sentences near the training ones, without gold
labels, that the teacher labels with its soft targets. A small student learns the teacher's function from far more
inputs than the labelled set holds, which is what distillation can use and fine-tuning cannot.

Tang et al.'s three rules, applied word by word to a whitespace-split sentence:

- *masking*: with probability ``p_mask`` a word becomes ``[MASK]`` (the teacher says what the rest implies);
- *replacement*: with probability ``p_replace`` a word becomes another word of the training set, drawn by its
  frequency (Tang et al. draw a word of the same part of speech; no tagger installs offline for every language);
- *n-gram sampling*: with probability ``p_ngram`` only a random n-gram of the result is kept, n ∈ 1 … 5.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from itertools import accumulate
from typing import Any


def mask_words(words: list[str], p_mask: float, mask_token: str, rng: random.Random) -> list[str]:
    """Each word replaced by ``mask_token`` with probability ``p_mask``."""
    return [mask_token if rng.random() < p_mask else word for word in words]


def replace_words(words: list[str], p_replace: float, vocabulary: Sequence[str], cumulative: Sequence[int],
                  rng: random.Random) -> list[str]:
    """Each word replaced, with probability ``p_replace``, by a training-set word drawn by frequency
    (``cumulative``: the running sum of the words' counts, so that a draw costs log(V), not V)."""
    return [rng.choices(vocabulary, cum_weights=cumulative)[0] if rng.random() < p_replace else word
            for word in words]


def sample_ngram(words: list[str], p_ngram: float, rng: random.Random, longest: int = 5) -> list[str]:
    """With probability ``p_ngram``, a random n-gram of the words (n from 1 to ``longest``); else all of them."""
    if len(words) < 2 or rng.random() >= p_ngram:
        return words
    n = rng.randint(1, min(longest, len(words)))
    start = rng.randrange(len(words) - n + 1)
    return words[start:start + n]


def augmented_texts(texts: Sequence[str], copies: int, mask_token: str, seed: int = 0, p_mask: float = 0.1,
                    p_replace: float = 0.1, p_ngram: float = 0.25) -> list[str]:
    """Up to ``copies`` distinct new sentences per text (none equal to a training text), made by the three rules."""
    if copies < 0:
        raise ValueError(f"augment_copies must be ≥ 0, got {copies}")
    for name, p in (("p_mask", p_mask), ("p_replace", p_replace), ("p_ngram", p_ngram)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
    rng = random.Random(seed)
    counts = Counter(word for text in texts for word in text.split())
    vocabulary, cumulative = list(counts), list(accumulate(counts.values()))
    seen, out = set(texts), []
    for text in texts:
        words, made = text.split(), 0
        for _ in range(copies * 3):  # a few more tries than copies: short texts repeat themselves
            if made == copies:
                break
            new = " ".join(sample_ngram(replace_words(mask_words(words, p_mask, mask_token, rng), p_replace,
                                                      vocabulary, cumulative, rng), p_ngram, rng))
            if new not in seen:
                seen.add(new)
                out.append(new)
                made += 1
    return out


def unlabeled(texts: Sequence[str]) -> list[dict[str, Any]]:
    """Examples without a gold label: the teacher's soft targets are their only teaching."""
    return [{"text": text} for text in texts]
