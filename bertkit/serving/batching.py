"""Batching across requests: texts from many clients share a forward pass, large requests are split.

Each encode request is queued as one slice; ``take`` fills a batch of up to ``max_batch_size`` texts from the
front of the queue (splitting a slice when it does not fit), and ``deliver`` files the rows of a finished batch back
into their requests, which are complete when every row has arrived.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .features import Item
from .protocol import Request


@dataclass
class Pending:
    """An encode request being answered: its rows arrive in parts, in any order."""

    request: Request
    received_at: float
    parts: dict[int, tuple[np.ndarray, list | None]] = field(default_factory=dict)
    rows_done: int = 0

    @property
    def size(self) -> int:
        return len(self.request.items)

    def assemble(self) -> tuple[np.ndarray, list | None]:
        """All rows in request order; token matrices of different lengths are zero-padded to the longest."""
        parts = [self.parts[start] for start in sorted(self.parts)]
        arrays = [vectors for vectors, _ in parts]
        if arrays[0].ndim == 3 and len({a.shape[1] for a in arrays}) > 1:
            width = max(a.shape[1] for a in arrays)
            arrays = [np.pad(a, ((0, 0), (0, width - a.shape[1]), (0, 0))) for a in arrays]
        vectors = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
        tokens = None if parts[0][1] is None else [t for _, part in parts for t in part]
        return vectors, tokens


@dataclass
class Slice:
    """Rows ``start:stop`` of a pending request."""

    pending: Pending
    start: int
    stop: int

    @property
    def items(self) -> list[Item]:
        return self.pending.request.items[self.start : self.stop]


@dataclass
class Batch:
    """What one worker encodes in one go."""

    slices: list[Slice]
    retries: int = 0

    @property
    def items(self) -> list[Item]:
        return [item for piece in self.slices for item in piece.items]


class Batcher:
    """A queue of request slices, cut into batches of at most ``max_batch_size`` texts."""

    def __init__(self, max_batch_size: int, wait_s: float):
        self.max_batch_size = max_batch_size
        self.wait_s = wait_s
        self.queue: deque[Slice] = deque()
        self.queued = 0  # texts waiting

    def add(self, request: Request, now: float | None = None) -> Pending:
        """Queue an encode request's texts."""
        pending = Pending(request, time.monotonic() if now is None else now)
        if pending.size:
            self.queue.append(Slice(pending, 0, pending.size))
            self.queued += pending.size
        return pending

    def requeue(self, batch: Batch) -> None:
        """Put a batch whose worker died back at the front of the queue."""
        for piece in reversed(batch.slices):
            self.queue.appendleft(piece)
            self.queued += piece.stop - piece.start

    def seconds_until_ready(self, now: float) -> float | None:
        """0 when a batch should go now (full, or its oldest text waited long enough); None when nothing waits."""
        if not self.queue:
            return None
        if self.queued >= self.max_batch_size:
            return 0.0
        return max(0.0, self.queue[0].pending.received_at + self.wait_s - now)

    def take(self) -> Batch:
        """The next batch, from the front of the queue."""
        slices, room = [], self.max_batch_size
        while self.queue and room:
            piece = self.queue[0]
            count = piece.stop - piece.start
            if count <= room:
                slices.append(self.queue.popleft())
            else:  # split: the rest stays at the front, so the request's rows keep their order
                slices.append(Slice(piece.pending, piece.start, piece.start + room))
                piece.start += room
                count = room
            room -= count
            self.queued -= count
        return Batch(slices)

    def drop(self, pending: Pending) -> None:
        """Remove a request's queued slices (its answer can no longer be complete)."""
        kept = [piece for piece in self.queue if piece.pending is not pending]
        self.queued -= sum(p.stop - p.start for p in self.queue if p.pending is pending)
        self.queue = deque(kept)


def deliver(batch: Batch, vectors: np.ndarray, tokens: list | None) -> list[Pending]:
    """File a finished batch's rows into their requests; returns the requests now complete."""
    done, row = [], 0
    for piece in batch.slices:
        count = piece.stop - piece.start
        part_tokens = tokens[row : row + count] if tokens is not None else None
        piece.pending.parts[piece.start] = (vectors[row : row + count], part_tokens)
        piece.pending.rows_done += count
        row += count
        if piece.pending.rows_done == piece.pending.size:
            done.append(piece.pending)
    return done
