"""``bertkit explain segment "TEXT"``: a Unigram model's n best segmentations of a text, with their probabilities,
and a few sampled ones — the picture of subword regularisation, as text and as a PNG.

A segmentation's probability under SentencePiece's sampling is exp(alpha · score) / Z, Z summed over every
segmentation (the lattice's forward pass gives it exactly); alpha = 1 is the model's own distribution, a small
alpha flattens it (more varied samples for data augmentation).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from .sentencepiece import SentencePieceProcessor


@dataclass
class Segmentation:
    """One way to cut the text: its pieces, score (sum of log-probabilities) and sampling probability."""

    pieces: list[str]
    score: float
    probability: float


def segmentations(processor: SentencePieceProcessor, text: str, nbest: int = 5, alpha: float = 1.0,
                  samples: int = 5, seed: int = 0) -> tuple[list[Segmentation], list[Segmentation]]:
    """The ``nbest`` best segmentations and ``samples`` draws, each with its probability at ``alpha``."""
    if processor.model_type != "unigram":
        raise ValueError(f"{processor.source} is a {processor.model_type} model: segmentations with probabilities "
                         "need a unigram model")
    normalized = processor.normalizer.normalize(text)[0]
    if not normalized:
        raise ValueError("nothing to segment: the text is empty after normalisation")
    unigram = processor.unigram
    log_z = unigram.forward(unigram.lattice(normalized), alpha)[-1]

    def described(pieces: list[str], score: float) -> Segmentation:
        return Segmentation(pieces, score, pow(2.718281828459045, alpha * score - log_z))

    best = [described([t.piece for t in tokens], score) for tokens, score in processor.nbest(text, max(nbest, 2))]
    best = best[:nbest]
    rng = random.Random(seed)
    drawn = []
    for _ in range(samples):
        nodes = unigram.sample(normalized, alpha, rng)
        drawn.append(described([normalized[n.start:n.end] for n in nodes], sum(n.score for n in nodes)))
    return best, drawn


def explain_segment(processor: SentencePieceProcessor, text: str, nbest: int = 5, alpha: float = 1.0,
                    samples: int = 5, seed: int = 0) -> str:
    """The n-best list and the samples as a text table."""
    best, drawn = segmentations(processor, text, nbest, alpha, samples, seed)
    lines = [f"text: {text!r} → normalised {processor.normalizer.normalize(text)[0]!r}",
             f"{nbest} best segmentations (score = sum of log-probabilities; P = exp({alpha:g}·score) / Z):"]
    lines += [f"  {i}. P={s.probability:7.2%}  score={s.score:8.3f}  {' | '.join(s.pieces)}"
              for i, s in enumerate(best, start=1)]
    lines.append(f"{samples} samples (alpha={alpha:g}, seed={seed}), as sample_encode draws them for training:")
    lines += [f"  P={s.probability:7.2%}  {' | '.join(s.pieces)}" for s in drawn]
    return "\n".join(lines)


def draw_segment(processor: SentencePieceProcessor, text: str, output: str | Path, nbest: int = 5,
                 alpha: float = 1.0, samples: int = 5, seed: int = 0) -> Path:
    """The same as a PNG: one row per segmentation, a box per piece, its probability at the right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..atomic import write_bytes_atomic

    best, drawn = segmentations(processor, text, nbest, alpha, samples, seed)
    rows = [("best", s) for s in best] + [("sample", s) for s in drawn]
    width = max(sum(len(p) for p in s.pieces) for _, s in rows)
    figure, axes = plt.subplots(figsize=(max(6.0, 0.45 * width + 3), 0.5 * len(rows) + 1.2))
    for row, (kind, seg) in enumerate(rows):
        y, x = len(rows) - row, 0
        colour = "#4c78a8" if kind == "best" else "#f58518"
        for piece in seg.pieces:
            axes.add_patch(plt.Rectangle((x, y - 0.4), len(piece), 0.8, facecolor=colour, alpha=0.25,
                                         edgecolor=colour))
            axes.text(x + len(piece) / 2, y, piece, ha="center", va="center", fontsize=9)
            x += len(piece)
        axes.text(width + 0.5, y, f"{kind} P={seg.probability:.1%}", va="center", fontsize=8)
    axes.set_xlim(0, width + 6)
    axes.set_ylim(0.3, len(rows) + 0.7)
    axes.axis("off")
    axes.set_title(f"{text!r}: {len(best)} best and {len(drawn)} sampled segmentations (alpha={alpha:g})")
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    path = Path(output)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def load_processor(model: str | Path) -> SentencePieceProcessor:
    """A ``.model`` file, or the SentencePiece model in a folder (its .model or Unigram tokenizer.json)."""
    path = Path(model)
    if path.is_file():
        return SentencePieceProcessor(path)
    from .sp_files import family_of

    return family_of(path).from_pretrained(path).sp
