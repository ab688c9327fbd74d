"""An epoch-based batch source over a fixed list of examples: reshuffled every epoch, resumable mid-epoch.

The Trainer wants an endless stream (``next_batch()``); fine-tuning thinks in epochs over a small labelled set.
``EpochBatches`` bridges the two: epoch ``e`` visits the examples in an order drawn from ``seed + e`` alone, so a
resumed run (epoch, position) sees exactly the batches the uninterrupted one would have.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any


class EpochBatches:
    """Batches of ``batch_size`` examples, ``collate``-d into tensors; ``steps_per_epoch`` batches per epoch.

    ``bucket_size`` > 1 sorts each run of ``bucket_size × batch_size`` shuffled examples by ``length(example)``
    before cutting batches (then shuffles the batches): batches of similar lengths carry little padding.
    ``resample(epoch)`` gives each epoch's examples (the same count; ``examples`` are epoch 0's), a function of the
    epoch alone, so a resumed run still sees the uninterrupted one's batches.
    """

    def __init__(
        self,
        examples: Sequence[Any],
        batch_size: int,
        collate: Callable[[list[Any]], dict],
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = False,
        bucket_size: int = 1,
        length: Callable[[Any], int] | None = None,
        resample: Callable[[int], Sequence[Any]] | None = None,
    ):
        if not examples:
            raise ValueError("no training examples: the training split is empty")
        if batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
        if bucket_size > 1 and length is None:
            raise ValueError("bucket_size > 1 needs length(example) to sort by")
        self.examples, self.batch_size, self.collate = examples, batch_size, collate
        self.seed, self.shuffle, self.drop_last = seed, shuffle, drop_last
        self.bucket_size, self.length, self.resample = bucket_size, length, resample
        self.epoch, self.position = 0, 0
        self._order: list[list[int]] | None = None
        self._examples_epoch = 0  # the epoch ``examples`` belong to (given ones: epoch 0's)

    @property
    def steps_per_epoch(self) -> int:
        """Batches in one pass over the examples."""
        n = len(self.examples) / self.batch_size
        return max(1, math.floor(n) if self.drop_last else math.ceil(n))

    def batches_of_epoch(self, epoch: int) -> list[list[int]]:
        """The index batches of ``epoch``: a function of ``seed`` and ``epoch`` only."""
        indices = list(range(len(self.examples)))
        rng = random.Random(self.seed * 1_000_003 + epoch)
        if self.shuffle:
            rng.shuffle(indices)
        if self.bucket_size > 1:
            span = self.bucket_size * self.batch_size
            indices = [i for start in range(0, len(indices), span)
                       for i in sorted(indices[start:start + span], key=lambda i: self.length(self.examples[i]))]
        batches = [indices[i:i + self.batch_size] for i in range(0, len(indices), self.batch_size)]
        if self.drop_last and len(batches) > 1 and len(batches[-1]) < self.batch_size:
            batches.pop()
        if self.shuffle and self.bucket_size > 1:
            rng.shuffle(batches)  # buckets would otherwise run short-to-long within each span
        return batches

    def next_batch(self) -> dict:
        """The next batch; after the last one of an epoch, the first of the next (reshuffled)."""
        if self._order is None:
            self._start_epoch(self.epoch)
        if self.position >= len(self._order):
            self.epoch, self.position = self.epoch + 1, 0
            self._start_epoch(self.epoch)
        batch = self._order[self.position]
        self.position += 1
        return self.collate([self.examples[i] for i in batch])

    def _start_epoch(self, epoch: int) -> None:
        """The epoch's examples (``resample(epoch)``: drawn anew, e.g. another subword segmentation) and order."""
        if self.resample is not None and epoch != self._examples_epoch:
            examples = self.resample(epoch)
            if len(examples) != len(self.examples):
                raise ValueError(f"resampling epoch {epoch} gave {len(examples)} examples instead of "
                                 f"{len(self.examples)}: it must keep one example per row")
            self.examples, self._examples_epoch = examples, epoch
        self._order = self.batches_of_epoch(epoch)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, values: dict[str, int]) -> None:
        self.epoch, self.position = int(values["epoch"]), int(values["position"])
        self._order = None
