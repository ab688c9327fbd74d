"""Batching across requests: texts from many clients share a forward pass, large requests are split.

Each encode request is queued as one slice; ``take`` fills a batch from the front of the queues, up to
``max_batch_size`` texts and ``max_batch_tokens`` tokens (TEI's token budget: a batch of long texts holds fewer of
them), splitting a slice when it does not fit, and ``deliver`` files the rows of a finished batch back into their
requests, which are complete when every row has arrived. A batch holds one task only (bert-as-service encoding,
sentence embeddings, token vectors, classification), since each task returns rows of its own shape.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from itertools import accumulate

import numpy as np

from .features import Item
from .protocol import ENCODE, Request


@dataclass
class Pending:
    """An encode request being answered: its rows arrive in parts, in any order."""

    request: Request
    received_at: float
    costs: list[int] = field(default_factory=list)  # prefix sums of the items' token counts, from 0
    parts: dict[int, tuple[np.ndarray, list | None]] = field(default_factory=dict)
    rows_done: int = 0

    @property
    def size(self) -> int:
        return len(self.request.items)

    def tokens(self, start: int, stop: int) -> int:
        """Tokens of items ``start:stop``."""
        return self.costs[stop] - self.costs[start]

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

    @property
    def tokens(self) -> int:
        return self.pending.tokens(self.start, self.stop)


@dataclass
class Batch:
    """What one worker encodes in one go."""

    slices: list[Slice]
    task: str = ENCODE
    retries: int = 0
    taken_at: float = 0.0

    @property
    def items(self) -> list[Item]:
        return [item for piece in self.slices for item in piece.items]

    @property
    def tokens(self) -> int:
        return sum(piece.tokens for piece in self.slices)


class Batcher:
    """Queues of request slices per task, cut into batches of at most ``max_batch_size`` texts and
    ``max_batch_tokens`` tokens (a single text longer than the budget goes alone).

    Requests of at most ``priority_size`` texts (bert-as-service's ``priority_batch_size``) queue apart and go
    first, so that a one-sentence request does not wait behind a 10,000-text one.
    """

    def __init__(self, max_batch_size: int, wait_s: float, priority_size: int = 16,
                 max_batch_tokens: int | None = None):
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens
        self.wait_s = wait_s
        self.priority_size = priority_size
        self.queues: dict[str, tuple[deque[Slice], deque[Slice]]] = {}  # task → (small, large)
        self.queued = 0  # texts waiting
        self.queued_tokens = 0

    def add(self, request: Request, now: float | None = None, costs: list[int] | None = None) -> Pending:
        """Queue an encode request's texts; ``costs`` are their token counts (1 each when not given)."""
        costs = [1] * len(request.items) if costs is None else costs
        pending = Pending(request, time.monotonic() if now is None else now, [0, *accumulate(costs)])
        if pending.size:
            small, large = self.queues.setdefault(request.task, (deque(), deque()))
            (small if pending.size <= self.priority_size else large).append(Slice(pending, 0, pending.size))
            self.queued += pending.size
            self.queued_tokens += pending.costs[-1]
        return pending

    def requeue(self, batch: Batch) -> None:
        """Put a batch whose worker died back at the front."""
        small, _ = self.queues.setdefault(batch.task, (deque(), deque()))
        for piece in reversed(batch.slices):
            small.appendleft(piece)
            self.queued += piece.stop - piece.start
            self.queued_tokens += piece.tokens

    def _fronts(self) -> list[tuple[float, str]]:
        return [(queue[0].pending.received_at, task) for task, queues in self.queues.items()
                for queue in queues if queue]

    def seconds_until_ready(self, now: float) -> float | None:
        """0 when a batch should go now (full, or its oldest text waited long enough); None when nothing waits."""
        fronts = self._fronts()
        if not fronts:
            return None
        full_of_tokens = self.max_batch_tokens is not None and self.queued_tokens >= self.max_batch_tokens
        if self.queued >= self.max_batch_size or full_of_tokens:
            return 0.0
        return max(0.0, min(fronts)[0] + self.wait_s - now)

    def take(self, now: float | None = None) -> Batch:
        """The next batch, of the task waiting longest: small requests first, then the front of the large ones."""
        fronts = self._fronts()
        task = min(fronts)[1] if fronts else ENCODE
        slices, room = [], self.max_batch_size
        budget = self.max_batch_tokens or float("inf")
        for queue in self.queues.get(task, ()):
            while queue and room and budget > 0:
                piece = queue[0]
                count = self._fitting(piece, room, budget, first=not slices)
                if count == 0:
                    break
                if count == piece.stop - piece.start:
                    slices.append(queue.popleft())
                else:  # split: the rest stays at the front, so the request's rows keep their order
                    slices.append(Slice(piece.pending, piece.start, piece.start + count))
                    piece.start += count
                tokens = slices[-1].tokens
                room -= count
                budget -= tokens
                self.queued -= count
                self.queued_tokens -= tokens
            if room == 0 or budget <= 0:
                break
        return Batch(slices, task, taken_at=time.monotonic() if now is None else now)

    @staticmethod
    def _fitting(piece: Slice, room: int, budget: float, first: bool) -> int:
        """How many of the slice's items fit in ``room`` texts and ``budget`` tokens (at least one in a new batch)."""
        costs, start = piece.pending.costs, piece.start
        count = min(piece.stop - start, room)
        while count and costs[start + count] - costs[start] > budget:
            count -= 1
        return max(count, 1) if first else count

    def drop(self, pending: Pending) -> None:
        """Remove a request's queued slices (its answer can no longer be complete)."""
        for queues in self.queues.values():
            for queue in queues:
                mine = [piece for piece in queue if piece.pending is pending]
                self.queued -= sum(p.stop - p.start for p in mine)
                self.queued_tokens -= sum(p.tokens for p in mine)
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
