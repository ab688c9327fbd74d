"""The pieces of a Unigram lattice and the float32 sums SentencePiece scores them with: what the best path
(``unigram.py``) and the n-best search (``unigram_nbest.py``) share."""

from __future__ import annotations

import struct
from dataclasses import dataclass

_FLOAT = struct.Struct("f")


def f32(x: float) -> float:
    """Round to float32: SentencePiece adds scores in float32, and ties between segmentations depend on it."""
    return _FLOAT.unpack(_FLOAT.pack(x))[0]


@dataclass(frozen=True)
class Node:
    """A piece of the lattice: characters ``[start, end)`` of the normalised text, its id and score."""

    start: int
    end: int
    id: int
    score: float


__all__ = ["Node", "f32"]
