"""Relative positions inside attention: the part of the scores (and of the values) that depends on i − j.

One interface for every scheme computed in the attention block itself, one file per scheme: ``scores(q, k)`` is the
additive term of the (already scaled) scores, ``values(probs)`` the term added to the context (None when the scheme
has none), ``adds_to_values`` says which. The attention block adds ``scores`` to the mask and lets its kernel do the
softmax; without a scheme nothing here runs.

- ``relative_key`` / ``relative_key_query``: Shaw et al.'s learned distance vectors (``shaw_positions.py``);
- ``nezha``: NEZHA's fixed sinusoidal distance vectors on keys and values (``nezha_positions.py``).
"""

from __future__ import annotations

from torch import nn

from ..config import BertConfig
from .nezha_positions import NezhaRelativePositions
from .shaw_positions import DistanceEmbedding

# the attribute each scheme has in ``attention.self`` (transformers' names, so checkpoints map one to one)
SCHEMES = {"relative_key": ("distance_embedding", DistanceEmbedding),
           "relative_key_query": ("distance_embedding", DistanceEmbedding),
           "nezha": ("relative_positions_encoding", NezhaRelativePositions)}


def build_relative_positions(config: BertConfig) -> tuple[str, nn.Module] | None:
    """(attribute name, module) of the config's scheme computed inside attention, or None (absolute, …)."""
    if config.position_embedding_type not in SCHEMES:
        return None
    name, kind = SCHEMES[config.position_embedding_type]
    return name, kind(config)
