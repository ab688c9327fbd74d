"""Translation language modelling (XLM's TLM; Lample & Conneau 2019): a sentence and its translation in one
sequence, ``[CLS] source [SEP] target [SEP]``, tokens masked on both sides, so a word hidden on one side can be read
off the other. Each token carries its side's language (``langs``) and, as in XLM, the target's positions start again
at 0. The masking is the MLM's (``masking.py``: budget, 80/10/10); the model is ``XLMWithLMHeadModel``.

Parallel data for a first run without a corpus: one number written out in two languages (``parallel_numbers``, from
``bertkit.seq2seq.numbers``' num2words grammars), cut into the same pieces the numbers task uses.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import torch

from ..model.heads import IGNORE_INDEX
from ..seq2seq.numbers import num2words_function, split_text
from .instances import SpecialIds
from .masking import MaskingConfig, mask_instance


@dataclass
class TLMExample:
    """One masked pair: what the model reads, what it predicts (-100 elsewhere), each token's language and
    position."""

    input_ids: list[int]
    labels: list[int]
    langs: list[int]
    position_ids: list[int]


def tlm_example(source: list[int], target: list[int], source_lang: int, target_lang: int, special: SpecialIds,
                vocab_size: int, config: MaskingConfig, rng: random.Random) -> TLMExample:
    """``[CLS] source [SEP] target [SEP]`` masked on both sides (never the special tokens)."""
    if not source or not target:
        raise ValueError("a TLM pair needs a non-empty sentence on each side")
    ids = [special.cls, *source, special.sep, *target, special.sep]
    first = len(source) + 2
    langs = [source_lang] * first + [target_lang] * (len(target) + 1)
    positions = list(range(first)) + list(range(len(target) + 1))  # XLM: the translation's positions restart
    maskable = [i not in (0, first - 1, len(ids) - 1) for i in range(len(ids))]
    masked = mask_instance(ids, [True] * len(ids), maskable, special.mask, vocab_size, config, rng)
    return TLMExample(masked.input_ids, masked.labels, langs, positions)


def collate_tlm(examples: list[TLMExample], pad: int) -> dict[str, torch.Tensor]:
    """Right-padded tensors for ``XLMWithLMHeadModel(**batch)``: input_ids, attention_mask, langs, position_ids,
    labels."""
    length = max(len(e.input_ids) for e in examples)

    def padded(rows: list[list[int]], value: int) -> torch.Tensor:
        return torch.tensor([row + [value] * (length - len(row)) for row in rows])

    return dict(input_ids=padded([e.input_ids for e in examples], pad),
                attention_mask=padded([[1] * len(e.input_ids) for e in examples], 0),
                langs=padded([e.langs for e in examples], 0),
                position_ids=padded([e.position_ids for e in examples], 0),
                labels=padded([e.labels for e in examples], IGNORE_INDEX))


def parallel_numbers(numbers: list[int], languages: list[str]) -> list[tuple[str, list[str], str, list[str]]]:
    """(language, pieces, other language, pieces) for each number and each ordered pair of distinct languages:
    the number written out in both, cut into the numbers task's pieces."""
    if len(set(languages)) < 2:
        raise ValueError(f"TLM needs at least two languages, got {languages}")
    to_words = num2words_function()
    written = {}
    for language in languages:
        try:
            written[language] = [split_text(to_words(n, lang=language), language) for n in numbers]
        except NotImplementedError:
            raise ValueError(f"num2words has no language {language!r}") from None
    return [(a, written[a][i], b, written[b][i]) for i in range(len(numbers))
            for a, b in itertools.permutations(languages, 2)]
