"""Batching across requests: texts from many clients share a forward pass, large requests are split.

Each encode request is queued as one slice; ``take`` fills a batch of up to ``max_batch_size`` texts from the
front of the queues (splitting a slice when it does not fit), and ``deliver`` files the rows of a finished batch back
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
    """Queues of request slices, cut into batches of at most ``max_batch_size`` texts.

    Requests of at most ``priority_size`` texts (bert-as-service's ``priority_batch_size``) queue apart and go
    first, so that a one-sentence request does not wait behind a 10,000-text one.
    """

    def __init__(self, max_batch_size: int, wait_s: float, priority_size: int = 16):
        self.max_batch_size = max_batch_size
        self.wait_s = wait_s
        self.priority_size = priority_size
        self.small: deque[Slice] = deque()
        self.large: deque[Slice] = deque()
        self.queued = 0  # texts waiting

    def add(self, request: Request, now: float | None = None) -> Pending:
        """Queue an encode request's texts."""
        pending = Pending(request, time.monotonic() if now is None else now)
        if pending.size:
            queue = self.small if pending.size <= self.priority_size else self.large
            queue.append(Slice(pending, 0, pending.size))
            self.queued += pending.size
        return pending

    def requeue(self, batch: Batch) -> None:
        """Put a batch whose worker died back at the front."""
        for piece in reversed(batch.slices):
            self.small.appendleft(piece)
            self.queued += piece.stop - piece.start

    def seconds_until_ready(self, now: float) -> float | None:
        """0 when a batch should go now (full, or its oldest text waited long enough); None when nothing waits."""
        fronts = [queue[0].pending.received_at for queue in (self.small, self.large) if queue]
        if not fronts:
            return None
        if self.queued >= self.max_batch_size:
            return 0.0
        return max(0.0, min(fronts) + self.wait_s - now)

    def take(self) -> Batch:
        """The next batch: small requests first, then the front of the large ones."""
        slices, room = [], self.max_batch_size
        for queue in (self.small, self.large):
            while queue and room:
                piece = queue[0]
                count = piece.stop - piece.start
                if count <= room:
                    slices.append(queue.popleft())
                else:  # split: the rest stays at the front, so the request's rows keep their order
                    slices.append(Slice(piece.pending, piece.start, piece.start + room))
                    piece.start += room
                    count = room
                room -= count
                self.queued -= count
        return Batch(slices)

    def drop(self, pending: Pending) -> None:
        """Remove a request's queued slices (its answer can no longer be complete)."""
        for queue in (self.small, self.large):
            self.queued -= sum(p.stop - p.start for p in queue if p.pending is pending)
            kept = [piece for piece in queue if piece.pending is not pending]
            queue.clear()
            queue.extend(kept)


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
