"""Instances → masked, padded batches: the resumable batch source the trainer draws from.

*Static* masking (google-research/bert) masks every instance once per copy when the data is built, ``dupe_factor``
copies each with its own mask; *dynamic* masking (RoBERTa) masks anew every time an instance is drawn. Either way
the order is a seeded shuffle per epoch, each DDP rank reads every ``world_size``-th instance, and the state (epoch,
position, masking generator) goes into checkpoints so that a resumed run draws exactly the same batches.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..encoding.batching import lengths_mask, pad_rows
from ..model.heads import IGNORE_INDEX
from .instances import Instance, SpecialIds
from .masking import MaskingConfig, mask_instance


@dataclass
class Example:
    """An instance as compact arrays; ``labels`` is set once it has been masked statically."""

    input_ids: np.ndarray
    token_type_ids: np.ndarray
    word_starts: np.ndarray
    label: int
    labels: np.ndarray | None = None


def maskable(input_ids: list[int], special: SpecialIds) -> list[bool]:
    """Positions masking may choose: everything but ``[CLS]``, ``[SEP]`` and ``[PAD]``."""
    excluded = {special.cls, special.sep, special.pad}
    return [i not in excluded for i in input_ids]


def to_example(instance: Instance) -> Example:
    return Example(np.asarray(instance.input_ids, np.int32), np.asarray(instance.token_type_ids, np.int8),
                   np.asarray(instance.word_starts, bool), instance.label)


def mask_example(example: Example, special: SpecialIds, vocab_size: int, config: MaskingConfig,
                 rng: random.Random) -> Example:
    """A masked copy of an example."""
    ids = example.input_ids.tolist()
    masked = mask_instance(ids, example.word_starts.tolist(), maskable(ids, special), special.mask, vocab_size,
                           config, rng)
    return Example(np.asarray(masked.input_ids, np.int32), example.token_type_ids, example.word_starts,
                   example.label, np.asarray(masked.labels, np.int32))


LENGTH_MULTIPLE = 8  # batch lengths are multiples of this: few distinct GEMM shapes, whose kernels oneDNN caches


def collate(examples: list[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad to the longest example, rounded up to ``LENGTH_MULTIPLE``; ``next_sentence_label`` carries the NSP/SOP
    label."""
    input_ids = pad_rows([e.input_ids for e in examples], pad_id, LENGTH_MULTIPLE)
    token_type_ids = pad_rows([e.token_type_ids for e in examples], 0, LENGTH_MULTIPLE)
    attention_mask = lengths_mask([len(e.input_ids) for e in examples], input_ids.shape[1])
    labels = pad_rows([e.labels for e in examples], IGNORE_INDEX, LENGTH_MULTIPLE)
    next_sentence_label = torch.tensor([e.label for e in examples], dtype=torch.long)
    return {"input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask,
            "labels": labels, "next_sentence_label": next_sentence_label}


class PretrainingBatches:
    """Endless batches over a list of examples: seeded shuffle per epoch, sharded by rank, masked as configured."""

    def __init__(
        self,
        examples: list[Example],
        batch_size: int,
        special: SpecialIds,
        vocab_size: int,
        masking: MaskingConfig,
        dynamic: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        self.examples = examples[rank::world_size]
        if len(self.examples) < batch_size:
            raise ValueError(f"the corpus gives {len(examples)} training instances ({len(self.examples)} for this "
                             f"rank), fewer than one batch of {batch_size}: add text or lower batch_size")
        if not dynamic and any(e.labels is None for e in self.examples):
            raise ValueError("static masking needs examples masked in advance (see mask_statically)")
        self.batch_size, self.special, self.vocab_size = batch_size, special, vocab_size
        self.masking, self.dynamic, self.seed = masking, dynamic, seed + 1000 * rank
        self.epoch, self.position = 0, 0
        self.rng = random.Random(self.seed)
        self.order = self._order()

    def _order(self) -> list[int]:
        order = list(range(len(self.examples)))
        random.Random(self.seed * 7919 + self.epoch).shuffle(order)
        return order

    def next_batch(self) -> dict[str, torch.Tensor]:
        """The next ``batch_size`` examples (a new epoch starts with a fresh shuffle; partial tails are dropped)."""
        if self.position + self.batch_size > len(self.order):
            self.epoch, self.position = self.epoch + 1, 0
            self.order = self._order()
        chosen = [self.examples[i] for i in self.order[self.position:self.position + self.batch_size]]
        self.position += self.batch_size
        if self.dynamic:
            chosen = [mask_example(e, self.special, self.vocab_size, self.masking, self.rng) for e in chosen]
        return collate(chosen, self.special.pad)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position, "rng": self.rng.getstate()}

    def load_state_dict(self, values: dict[str, Any]) -> None:
        self.epoch, self.position = values["epoch"], values["position"]
        version, internal, gauss = values["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        self.order = self._order()


def mask_statically(examples: list[Example], special: SpecialIds, vocab_size: int, masking: MaskingConfig,
                    rng: random.Random) -> list[Example]:
    """Each example masked once (call once per ``dupe_factor`` copy, on freshly cut instances)."""
    return [mask_example(e, special, vocab_size, masking, rng) for e in examples]
