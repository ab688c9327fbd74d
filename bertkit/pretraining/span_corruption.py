"""T5's span corruption (Raffel et al. 2020, §3.1.4): a fraction of the tokens (15 %) in spans of mean length 3 is
dropped from the input, each span replaced by one sentinel; the target lists the sentinels, each followed by the
tokens it hides. Sentinels count down from the top of the vocabulary (``<extra_id_0>`` is the last id, as the T5
tokenizer places them), so the first span of every example is ``<extra_id_0>``.

The noise mask follows T5's ``random_spans_noise_mask``: the number of noise tokens is rounded from the density,
the number of spans from the mean length, and both the noise and the kept tokens are cut into that many non-empty
spans uniformly at random, kept span first, alternating. Pure Python with a seeded ``random.Random``: the same seed
corrupts a sequence the same way on every machine.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class SpanCorruption:
    """``noise_density`` of the tokens hidden in spans of ``mean_noise_span_length``; sentinel i is
    ``first_sentinel - i`` for i < ``num_sentinels`` (T5: 32099 down to 32000, the tokenizer's 100 extra ids)."""

    vocab_size: int
    first_sentinel: int | None = None  # None: vocab_size - 1
    num_sentinels: int = 100
    noise_density: float = 0.15
    mean_noise_span_length: float = 3.0

    def __post_init__(self) -> None:
        if not 0.0 < self.noise_density < 1.0:
            raise ValueError(f"noise_density must be in (0, 1), got {self.noise_density!r}")
        if not self.mean_noise_span_length >= 1.0:
            raise ValueError(f"mean_noise_span_length must be ≥ 1, got {self.mean_noise_span_length!r}")
        first, last = self.sentinel(0), self.sentinel(self.num_sentinels - 1)
        if self.num_sentinels < 1 or not 0 <= last <= first < self.vocab_size:
            raise ValueError(f"span-corruption sentinels {last}…{first} ({self.num_sentinels} counting down from "
                             f"{first}) lie beyond the vocabulary [0, {self.vocab_size}): give the model's "
                             "vocab_size and the id of <extra_id_0>")

    def sentinel(self, index: int) -> int:
        """The id of ``<extra_id_{index}>``."""
        return (self.vocab_size - 1 if self.first_sentinel is None else self.first_sentinel) - index

    def spans(self, length: int) -> tuple[int, int]:
        """(noise tokens, noise spans) of a sequence of ``length`` tokens, as T5 rounds them."""
        noise = min(max(round(length * self.noise_density), 1), length - 1)
        # at most one noise span per kept token: spans alternate, a kept one first
        return noise, min(max(round(noise / self.mean_noise_span_length), 1), length - noise)

    def noise_mask(self, length: int, rng: random.Random) -> list[bool]:
        """True where a token is hidden: spans of noise between spans of kept tokens, a kept span first."""
        if length < 2:
            raise ValueError(f"span corruption needs at least 2 tokens, got {length}")
        noise, num_spans = self.spans(length)
        mask = []
        for kept, hidden in zip(_segment(length - noise, num_spans, rng), _segment(noise, num_spans, rng),
                                strict=True):
            mask += [False] * kept + [True] * hidden
        return mask

    def __call__(self, tokens: list[int], rng: random.Random) -> tuple[list[int], list[int]]:
        """(input, target) of one token sequence (no end-of-sequence token: the caller appends its own)."""
        mask = self.noise_mask(len(tokens), rng)
        if sum(a and not b for a, b in zip(mask, [False] + mask, strict=False)) > self.num_sentinels:
            raise ValueError(f"{len(tokens)} tokens need more than the {self.num_sentinels} sentinels: shorten the "
                             "sequences or lower noise_density")
        low = self.sentinel(self.num_sentinels - 1)
        if any(low <= t <= self.sentinel(0) for t in tokens):
            raise ValueError(f"the text already holds sentinel ids ({low}…{self.sentinel(0)}): a tokenizer whose "
                             "extra ids are elsewhere? set first_sentinel")
        return _replace_spans(tokens, mask, self.sentinel), _replace_spans(tokens, [not m for m in mask],
                                                                           self.sentinel)


def _segment(items: int, segments: int, rng: random.Random) -> list[int]:
    """``items`` cut into ``segments`` non-empty runs uniformly at random (T5's ``_random_segmentation``)."""
    cuts = sorted(rng.sample(range(1, items), segments - 1))
    bounds = [0] + cuts + [items]
    return [b - a for a, b in zip(bounds, bounds[1:], strict=False)]


def _replace_spans(tokens: list[int], mask: list[bool], sentinel) -> list[int]:
    """Each run of masked tokens replaced by the next sentinel; unmasked tokens kept."""
    out, count, previous = [], 0, False
    for token, hidden in zip(tokens, mask, strict=True):
        if hidden and not previous:
            out.append(sentinel(count))
            count += 1
        elif not hidden:
            out.append(token)
        previous = hidden
    return out
