"""The n best segmentations of a Unigram lattice, by A* search from the end, exactly as SentencePiece lists them.

A partial hypothesis is a run of pieces from some position to the end of the text. Its priority is
``f = g + h``: ``g`` the score of its pieces, ``h`` the best score from the start of the text to its first piece,
which Viterbi's forward pass gives exactly, so hypotheses come off the agenda in order of their best completion and
the first n that reach the start are the n best.

Segmentations with equal scores are common (runs of one character: ``-`` + ``---`` or ``---`` + ``-``), and which of
them SentencePiece lists first depends on how its priority queue (C++'s ``std::priority_queue``, a binary heap)
orders equal priorities. ``StdHeap`` is that heap, step for step, so the lists agree to the last tie. Scores are
float32, as SentencePiece adds them. The agenda is cut to its best few hundred when it grows past 10,000 entries,
and the search falls back to the best path after too many hypotheses, both as SentencePiece does.
"""

from __future__ import annotations

from .unigram_lattice import Node, f32

MAX_NBEST = 1024
MAX_AGENDA = 10_000
MIN_AGENDA = 512
MAX_HYPOTHESES = 100_000
MAX_ALLOCATED = 500_000
MAX_SHRINKS = 10


class Hypothesis:
    """Pieces from ``node`` to the end of the text, linked through ``next``; ``fx`` orders the agenda."""

    __slots__ = ("fx", "gx", "node", "next")

    def __init__(self, fx: float, gx: float, node: Node | None, next: Hypothesis | None):
        self.fx, self.gx, self.node, self.next = fx, gx, node, next


class StdHeap:
    """A max-heap on ``fx`` that breaks ties as libstdc++'s ``push_heap`` / ``pop_heap`` do."""

    def __init__(self) -> None:
        self.items: list[Hypothesis] = []

    def __len__(self) -> int:
        return len(self.items)

    def _sift_up(self, hole: int, top: int, value: Hypothesis) -> None:
        """Move ``value`` up from ``hole`` while its parent is smaller (``__push_heap``)."""
        items = self.items
        parent = (hole - 1) // 2
        while hole > top and items[parent].fx < value.fx:
            items[hole] = items[parent]
            hole = parent
            parent = (hole - 1) // 2
        items[hole] = value

    def push(self, value: Hypothesis) -> None:
        self.items.append(value)
        self._sift_up(len(self.items) - 1, 0, value)

    def pop(self) -> Hypothesis:
        """Remove and return the top, moving the last item down the larger-child path (``__adjust_heap``)."""
        items = self.items
        top = items[0]
        value = items.pop()
        n = len(items)
        if n == 0:
            return top
        hole = child = 0
        while child < (n - 1) // 2:
            child = 2 * (child + 1)
            if items[child].fx < items[child - 1].fx:
                child -= 1
            items[hole] = items[child]
            hole = child
        if n % 2 == 0 and child == (n - 2) // 2:
            child = 2 * (child + 1)
            items[hole] = items[child - 1]
            hole = child - 1
        self._sift_up(hole, 0, value)
        return top


def _shrink(agenda: StdHeap, keep: int) -> tuple[StdHeap, int]:
    """The best ``keep`` hypotheses in a new agenda, and how many hypotheses they hold with their tails."""
    kept, seen = StdHeap(), set()
    for _ in range(min(len(agenda), keep)):
        hyp = agenda.pop()
        kept.push(hyp)
        while hyp is not None and id(hyp) not in seen:
            seen.add(id(hyp))
            hyp = hyp.next
    return kept, len(seen)


def nbest(ends: list[list[Node]], best: list[float], size: int, viterbi: list[Node]) -> list[tuple[list[Node], float]]:
    """The ``size`` best paths through the lattice (``ends[pos]``: the nodes ending at ``pos``), best first.

    ``best[pos]`` is the best score of a path from the start to ``pos``; ``viterbi`` the best path, the answer
    when the search gives up.
    """
    n = len(ends) - 1
    size = min(size, MAX_NBEST)
    bos = Node(0, 0, -1, 0.0)
    agenda = StdHeap()
    agenda.push(Hypothesis(best[n], 0.0, None, None))  # the end of the text
    results: list[tuple[list[Node], float]] = []
    allocated = total = 1
    limit, shrinks = MAX_HYPOTHESES, 0
    keep = min(MIN_AGENDA, size * 10)
    while agenda:
        top = agenda.pop()
        node = top.node
        if node is bos:
            path, hyp = [], top.next
            while hyp is not None and hyp.next is not None:
                path.append(hyp.node)
                hyp = hyp.next
            results.append((path, top.fx))
            if len(results) == size:
                break
            continue
        pos = n if node is None else node.start
        lefts = ends[pos] if pos > 0 else [bos]
        for left in lefts:
            backtrace = f32(best[left.start] + left.score) if left is not bos else 0.0
            agenda.push(Hypothesis(f32(backtrace + top.gx), f32(left.score + top.gx), left, top))
        allocated += len(lefts)
        total += len(lefts)
        if total >= MAX_ALLOCATED or allocated >= MAX_ALLOCATED:
            return [(viterbi, best[n])]
        if len(agenda) >= MAX_AGENDA or (len(agenda) > keep and allocated >= limit):
            if shrinks >= MAX_SHRINKS:
                return [(viterbi, best[n])]
            shrinks += 1
            agenda, allocated = _shrink(agenda, keep)
            limit = allocated + MAX_HYPOTHESES
    return results
