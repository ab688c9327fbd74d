"""Sequence-to-sequence training on the encoder-decoder Transformer: numbers ↔ words in several languages
(``numbers``: the data and its character vocabulary; ``run``: training, greedy and beam evaluation, figures)."""

from .config import NumbersConfig
from .numbers import CharVocab, number_pairs, split_numbers

__all__ = ["CharVocab", "NumbersConfig", "number_pairs", "split_numbers"]
