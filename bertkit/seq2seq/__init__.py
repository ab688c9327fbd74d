"""Sequence-to-sequence training on the encoder-decoder Transformer: numbers ↔ words in several languages
(``numbers``: the data and its character vocabulary; ``run``: training, greedy and beam evaluation, figures)."""

from .config import NumbersConfig
from .numbers import PieceVocab, number_pairs, split_numbers

__all__ = ["PieceVocab", "NumbersConfig", "number_pairs", "split_numbers"]
