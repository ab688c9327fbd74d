"""The Unigram language model: a probability per piece, and the segmentations of a text by their probability.

A segmentation's score is the sum of its pieces' log-probabilities. The lattice of a normalised text holds, at each
character, every vocabulary piece that starts there (plus an unknown-piece node for a character no piece of length
one covers, scored ``min_score - 10``). From the lattice:

* ``viterbi`` — the best segmentation (dynamic programming, left to right);
* ``nbest`` — the n best, exactly, by A* search from the end, the Viterbi scores being the exact heuristic;
* ``sample`` — a segmentation drawn with probability ∝ exp(alpha · score) (forward filtering, backward sampling),
  SentencePiece's subword regularisation (``enable_sampling``, ``nbest_size=-1``).

User-defined pieces get the score ``0.1 · (length - 1)`` so that they are always taken (the longest first); UNUSED
pieces are in the vocabulary but never produced. This mirrors SentencePiece's ``unigram_model.cc``, tie-breaking
included (on a tie the piece that starts earliest wins).
"""

from __future__ import annotations

import math
import random
from array import array

from .sentencepiece_model import NORMAL, UNUSED, USER_DEFINED
from .sp_normalizer import utf8_length
from .unigram_lattice import Node, f32
from .unigram_nbest import nbest

UNK_PENALTY = 10.0
SCORE_RESET = 100_000.0


class UnigramModel:
    """Segments normalised text with a Unigram vocabulary (pieces, scores, types) as SentencePiece does."""

    def __init__(self, pieces: list[str], scores: list[float], types: list[int], unk_id: int):
        usable = (NORMAL, USER_DEFINED, UNUSED)  # the rest (control, unknown, byte) never match text
        self.vocab = {p: i for i, (p, t) in enumerate(zip(pieces, types, strict=True)) if t in usable}
        self.scores, self.types, self.unk_id = scores, types, unk_id
        normal = [s for s, t in zip(scores, types, strict=True) if t == NORMAL]
        self.min_score = min(normal, default=0.0)
        self.unk_score = f32(self.min_score - UNK_PENALTY)
        # One dict for the Viterbi pass: a piece → (id, score), a prefix of a piece (or an UNUSED piece) → None;
        # a substring absent from it ends the search from that start.
        self.table: dict[str, tuple[int, float] | None] = {p[:k]: None for p in self.vocab
                                                          for k in range(1, len(p) + 1)}
        for p, i in self.vocab.items():
            if types[i] != UNUSED:
                self.table[p] = (i, self._score(i, p, 0, len(p), True))
        self.longest = max(map(len, self.vocab), default=1)

    def _matches(self, text: str, start: int):
        """Yield (end, id) of every usable vocabulary piece starting at ``start``, shortest first."""
        table = self.table
        for end in range(start + 1, len(text) + 1):
            hit = table.get(text[start:end], 0)
            if hit == 0:
                return
            if hit is not None:
                yield end, hit[0]

    def _score(self, i: int, text: str, start: int, end: int, bytes_length: bool) -> float:
        if self.types[i] != USER_DEFINED:
            return self.scores[i]
        length = sum(map(utf8_length, text[start:end])) if bytes_length else end - start
        return f32(0.1 * (length - 1))  # SentencePiece 0.2's bonus: the longest user-defined symbol wins

    def viterbi(self, text: str) -> list[tuple[int, int, int]]:
        """The best segmentation: (start, end, id) per piece; unknown characters get ``unk_id``."""
        return self.best_path(text)[0]

    def best_path(self, text: str, base: float = 0.0) -> tuple[list[tuple[int, int, int]], float, float]:
        """The best segmentation of ``text`` reached with score ``base``, its score, and the smallest gap between
        two candidates for one position (how close the decisions were; 0 for a tie).

        SentencePiece's ``EncodeOptimized``, float32 sums and all: when the running score passes ±100,000 the scores
        ahead are shifted back towards 0 so float32 keeps its precision, and the shift changes float32's rounding.
        """
        n = len(text)
        best = [base] + [0.0] * n
        back: list[tuple[int, int] | None] = [None] * (n + 1)  # (start, id) of the best piece ending here
        frontier, gap = 0, math.inf
        table, longest, unk_id, unk_score = self.table, self.longest, self.unk_id, self.unk_score
        # f32 inlined as a store to a float32 cell (2.5x faster than struct): this loop is the tokenizer's hot spot
        cell, get = array("f", [0.0]), table.get
        for start in range(n):
            here = best[start]
            if here > SCORE_RESET or here < -SCORE_RESET:
                for k in range(start, frontier + 1):
                    if k == start or back[k] is not None:
                        best[k] = f32(best[k] - here)
                here = 0.0
            single = False
            stop = start + longest
            for end in range(start + 1, (n if n < stop else stop) + 1):
                hit = get(text[start:end], 0)  # 0: no piece starts so; None: a prefix only
                if hit is None:
                    continue
                if hit == 0:
                    break
                cell[0] = here + hit[1]
                score = cell[0]
                if back[end] is None:
                    best[end], back[end] = score, (start, hit[0])
                    if end > frontier:
                        frontier = end
                else:
                    old = best[end]
                    if score > old:
                        best[end], back[end] = score, (start, hit[0])
                        if score - old < gap:
                            gap = score - old
                    elif old - score < gap:
                        gap = old - score
                if end == start + 1:
                    single = True
            if not single:
                frontier = max(frontier, start + 1)
                cell[0] = here + unk_score
                score = cell[0]
                if back[start + 1] is not None:
                    gap = min(gap, abs(score - best[start + 1]))
                if back[start + 1] is None or score > best[start + 1]:
                    best[start + 1], back[start + 1] = score, (start, unk_id)
        out, end = [], n
        while end > 0:
            start, i = back[end]
            out.append((start, end, i))
            end = start
        return out[::-1], best[n], gap

    def step_scores(self, text: str, path: list[tuple[int, int, int]]) -> list[float]:
        """The score each piece of a path adds, as the Viterbi pass adds it."""
        unk_id, unk_score, table = self.unk_id, self.unk_score, self.table
        return [unk_score if i == unk_id else table[text[s:e]][1] for s, e, i in path]

    # -- the lattice: n-best and sampling -----------------------------------------------------------------

    def lattice(self, text: str) -> list[list[Node]]:
        """Nodes ending at each position 0..n (position 0 holds none; the start is implicit)."""
        ends: list[list[Node]] = [[] for _ in range(len(text) + 1)]
        for start in range(len(text)):
            single = False
            for end, i in self._matches(text, start):
                ends[end].append(Node(start, end, i, f32(self._score(i, text, start, end, False))))
                single = single or end == start + 1
            if not single:
                ends[start + 1].append(Node(start, start + 1, self.unk_id, self.unk_score))
        return ends

    @staticmethod
    def _best_prefix(ends: list[list[Node]]) -> list[float]:
        """For each position, the score of the best path from the start to it (Viterbi's forward pass)."""
        best = [0.0] + [-math.inf] * (len(ends) - 1)
        for pos in range(1, len(ends)):
            best[pos] = max((f32(best[node.start] + node.score) for node in ends[pos]), default=-math.inf)
        return best

    def nbest(self, text: str, size: int) -> list[tuple[list[Node], float]]:
        """The ``size`` best segmentations with their scores, best first (see ``unigram_nbest.py``).

        As SentencePiece: an empty text gives one empty segmentation, and ``size`` 1 the best with score 0.
        """
        if not text:
            return [([], 0.0)]
        if size <= 1:
            return [(self.best_nodes(text), 0.0)]
        ends = self.lattice(text)
        return nbest(ends, self._best_prefix(ends), size, self.best_nodes(text))

    def best_nodes(self, text: str) -> list[Node]:
        """The best segmentation as lattice nodes."""
        nodes = []
        for start, end, i in self.viterbi(text):
            score = self.unk_score if i == self.unk_id else f32(self._score(i, text, start, end, False))
            nodes.append(Node(start, end, i, score))
        return nodes

    def forward(self, ends: list[list[Node]], alpha: float) -> list[float]:
        """log Σ exp(alpha · score) over the paths from the start to each position."""
        log_z = [0.0] + [-math.inf] * (len(ends) - 1)
        for pos in range(1, len(ends)):
            terms = [log_z[node.start] + alpha * node.score for node in ends[pos]]
            top = max(terms)
            log_z[pos] = top + math.log(sum(math.exp(t - top) for t in terms))
        return log_z

    def sample(self, text: str, alpha: float, rng: random.Random | None = None) -> list[Node]:
        """A segmentation drawn with probability ∝ exp(alpha · score): forward filtering, backward sampling."""
        if not text:
            return []
        rng = rng or random
        ends = self.lattice(text)
        log_z = self.forward(ends, alpha)
        out, pos = [], len(text)
        while pos > 0:
            weights = [math.exp(log_z[node.start] + alpha * node.score - log_z[pos]) for node in ends[pos]]
            node = rng.choices(ends[pos], weights)[0]
            out.append(node)
            pos = node.start
        return out[::-1]

    def log_probability(self, text: str, nodes: list[Node], alpha: float) -> float:
        """log P(segmentation) under the sampling distribution: alpha · score minus the log partition function."""
        return alpha * sum(node.score for node in nodes) - self.forward(self.lattice(text), alpha)[-1]
