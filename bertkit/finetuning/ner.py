"""Token classification: BIO tags ↔ entity spans, word ↔ WordPiece alignment, words split to fit the window.

Labels go on the first WordPiece of each word; later pieces, special tokens and padding get -100 (ignored by the
loss), and a word's prediction is read from its first piece. Tags that break BIO (``I-X`` after ``O`` or after
another type) are handled as conlleval does: such an ``I-X`` starts a new entity. ``check_tags`` refuses tags that
are not ``O`` / ``B-X`` / ``I-X`` at all, and ``strict_bio`` refuses the broken sequences instead of repairing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..model.heads import IGNORE_INDEX

_TAG = re.compile(r"^(O|[BI]-\S+)$")
Span = tuple[str, int, int]  # (type, first word, one past the last word)


def check_tags(tags: Sequence[str], where: str = "tags") -> None:
    """Every tag must be ``O``, ``B-TYPE`` or ``I-TYPE``."""
    for i, tag in enumerate(tags):
        if not _TAG.match(tag):
            raise ValueError(f"{where}: tag {i} is {tag!r}, not BIO (use O, B-TYPE or I-TYPE)")


def bio_errors(tags: Sequence[str]) -> list[int]:
    """Positions of ``I-X`` tags that neither follow ``B-X`` nor ``I-X``."""
    return [i for i, tag in enumerate(tags)
            if tag.startswith("I-") and (i == 0 or tags[i - 1][2:] != tag[2:] or tags[i - 1] == "O")]


def strict_bio(tags: Sequence[str], where: str = "tags") -> None:
    """Refuse an ``I-X`` that starts an entity (``check_tags`` plus :func:`bio_errors`)."""
    check_tags(tags, where)
    errors = bio_errors(tags)
    if errors:
        i = errors[0]
        before = tags[i - 1] if i else "the start"
        raise ValueError(f"{where}: tag {i} is {tags[i]!r} after {before!r}, which breaks BIO "
                         f"({len(errors)} such tag(s)); fix the data or use bio: repair")


def repair_bio(tags: Sequence[str]) -> list[str]:
    """Turn each entity-starting ``I-X`` into ``B-X`` (the reading :func:`bio_spans` gives them anyway)."""
    errors = set(bio_errors(tags))
    return ["B-" + tag[2:] if i in errors else tag for i, tag in enumerate(tags)]


def bio_spans(tags: Sequence[str]) -> list[Span]:
    """Entities as (type, start, end) word spans; an ``I-X`` that starts an entity counts as ``B-X``."""
    spans: list[Span] = []
    kind, start = None, 0
    for i, tag in enumerate([*tags, "O"]):
        continues = tag.startswith("I-") and kind == tag[2:]
        if kind is not None and not continues:
            spans.append((kind, start, i))
            kind = None
        if tag != "O" and not continues:
            kind, start = tag[2:], i
    return spans


@dataclass
class WordChunk:
    """A run of words that fits the window: its WordPiece ids and, per piece, the word it came from."""

    first_word: int
    input_ids: list[int]
    word_ids: list[int | None]


def word_pieces(tokenizer, words: Sequence[str]) -> list[list[int]]:
    """WordPiece ids of each word; a word that yields nothing (a control character) becomes ``[UNK]``."""
    return [tokenizer.text_to_ids(word) or [tokenizer.unk_token_id] for word in words]


def chunk_words(tokenizer, words: Sequence[str], max_length: int) -> list[WordChunk]:
    """``[CLS] pieces [SEP]`` runs of whole words, each at most ``max_length`` tokens (a long sentence splits)."""
    budget = max_length - 2
    pieces = word_pieces(tokenizer, words)
    chunks, start = [], 0
    while start < len(words):
        ids: list[int] = [tokenizer.cls_token_id]
        word_ids: list[int | None] = [None]
        end = start
        while end < len(words) and len(ids) - 1 + min(len(pieces[end]), budget) <= budget:
            word = pieces[end][:budget]  # a single word longer than the window keeps its first pieces
            ids += word
            word_ids += [end] * len(word)
            end += 1
        chunks.append(WordChunk(start, ids + [tokenizer.sep_token_id], word_ids + [None]))
        start = end
    return chunks


def first_piece_labels(word_ids: Sequence[int | None], word_labels: Sequence[int]) -> list[int]:
    """The word's label on its first piece, -100 on later pieces and special tokens."""
    labels, previous = [], None
    for word in word_ids:
        labels.append(IGNORE_INDEX if word is None or word == previous else word_labels[word])
        previous = word
    return labels


def words_from_pieces(word_ids: Sequence[int | None], piece_predictions: Sequence[int]) -> dict[int, int]:
    """Each word's prediction: the one on its first piece."""
    out: dict[int, int] = {}
    for word, prediction in zip(word_ids, piece_predictions, strict=False):
        if word is not None and word not in out:
            out[word] = int(prediction)
    return out


def entities(words: Sequence[str], tags: Sequence[str], joiner: str = " ") -> list[dict]:
    """Decoded entities: type, word span and text (words joined by ``joiner``: "" for Chinese characters)."""
    return [{"type": kind, "start": start, "end": end, "text": joiner.join(words[start:end])}
            for kind, start, end in bio_spans(tags)]
