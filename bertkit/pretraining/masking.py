"""Masked-LM targets: which positions to predict, and what the model sees there.

``min(max_predictions, max(1, round(len × 0.15)))`` positions are chosen, never ``[CLS]``/``[SEP]``/``[PAD]``.
Each chosen position is replaced by ``[MASK]`` 80 % of the time, by a random token 10 %, and left unchanged 10 %;
all of them are predicted. What is chosen depends on the strategy:

* ``token``: single WordPiece tokens (original BERT);
* ``whole_word``: all pieces of a word together — a word is a token that starts one plus the ``##`` pieces after it,
  or for Chinese the characters of one jieba word (Chinese-BERT-wwm);
* ``ngram``: runs of 1–3 whole words, n drawn with probability ∝ 1/n (ALBERT);
* ``span``: runs of whole words whose length is drawn from a geometric distribution (p = 0.2) clipped at 10
  (SpanBERT);
* ``phrase`` / ``entity`` (ERNIE's knowledge masking): whole units — a phrase or entity of the ``units_file`` list,
  or for Chinese phrases a jieba word — each unit one word of the grouping above (``units.py`` marks them), so it
  is masked whole or not at all; every token of a chosen unit follows the 80/10/10 rule.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..model.heads import IGNORE_INDEX

STRATEGIES = ("token", "whole_word", "ngram", "span", "phrase", "entity")


@dataclass
class MaskingConfig:
    """How to choose and corrupt the predicted positions."""

    strategy: str = "token"
    mlm_probability: float = 0.15
    max_predictions_per_seq: int = 20
    mask_replace_prob: float = 0.8
    random_replace_prob: float = 0.1
    max_ngram: int = 3
    span_geometric_p: float = 0.2
    max_span_length: int = 10

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"masking strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if not 0.0 < self.mlm_probability < 1.0:
            raise ValueError(f"mlm_probability must be in (0, 1), got {self.mlm_probability}")
        if self.mask_replace_prob + self.random_replace_prob > 1.0:
            raise ValueError("mask_replace_prob + random_replace_prob must not exceed 1")


@dataclass
class MaskedInstance:
    """What the model reads (``input_ids``) and what it must predict (``labels``; -100 where nothing)."""

    input_ids: list[int]
    labels: list[int]
    masked_positions: list[int]


def word_groups(word_starts: list[bool], maskable: list[bool]) -> list[list[int]]:
    """Positions grouped into whole words, leaving out positions that may not be masked."""
    groups: list[list[int]] = []
    for position, (starts, ok) in enumerate(zip(word_starts, maskable, strict=True)):
        if not ok:
            continue
        if starts or not groups or groups[-1][-1] != position - 1:
            groups.append([position])
        else:
            groups[-1].append(position)
    return groups


def number_to_predict(num_tokens: int, config: MaskingConfig) -> int:
    """Google's count: ``min(max_predictions, max(1, round(len × p)))`` over the maskable tokens."""
    return min(config.max_predictions_per_seq, max(1, round(num_tokens * config.mlm_probability)))


def _unit_lengths(config: MaskingConfig, rng: random.Random) -> int:
    """How many consecutive words the next masked unit spans."""
    if config.strategy == "ngram":
        weights = [1.0 / n for n in range(1, config.max_ngram + 1)]
        return rng.choices(range(1, config.max_ngram + 1), weights)[0]
    if config.strategy == "span":
        length = 1
        while rng.random() > config.span_geometric_p and length < config.max_span_length:
            length += 1
        return length
    return 1


def choose_positions(word_starts: list[bool], maskable: list[bool], config: MaskingConfig,
                     rng: random.Random) -> list[int]:
    """The sorted positions to predict, chosen in units of the strategy, never more than the budget."""
    groups = [[p] for p, ok in enumerate(maskable) if ok] if config.strategy == "token" else \
        word_groups(word_starts, maskable)
    budget = number_to_predict(sum(maskable), config)
    chosen: set[int] = set()
    order = list(range(len(groups)))
    rng.shuffle(order)
    for start in order:
        if len(chosen) >= budget:
            break
        length = _unit_lengths(config, rng)
        unit = [p for g in groups[start:start + length] for p in g]
        while unit and (len(chosen) + len(unit) > budget or chosen.intersection(unit)):
            if length == 1:  # a word too long for what is left of the budget is skipped, as in Google's code
                unit = []
                break
            length -= 1
            unit = [p for g in groups[start:start + length] for p in g]
        chosen.update(unit)
    return sorted(chosen)


def mask_instance(
    input_ids: list[int],
    word_starts: list[bool],
    maskable: list[bool],
    mask_id: int,
    vocab_size: int,
    config: MaskingConfig,
    rng: random.Random,
) -> MaskedInstance:
    """Choose positions and corrupt them 80/10/10; the labels hold the original ids there."""
    positions = choose_positions(word_starts, maskable, config, rng)
    ids = list(input_ids)
    labels = [IGNORE_INDEX] * len(ids)
    for position in positions:
        labels[position] = ids[position]
        draw = rng.random()
        if draw < config.mask_replace_prob:
            ids[position] = mask_id
        elif draw < config.mask_replace_prob + config.random_replace_prob:
            ids[position] = rng.randrange(vocab_size)
        # else: left unchanged, still predicted
    return MaskedInstance(ids, labels, positions)
