"""Sentences → training instances ``[CLS] A [SEP] B [SEP]``, with google-research/bert's semantics.

Each document is cut into chunks of whole sentences up to a target length (``max_seq_length - 3``, or with
probability ``short_seq_prob`` a random shorter one, so the model also sees short inputs). A chunk's sentences are
split at a random point into A and B. The pair task decides B:

* ``nsp`` (BERT): half the time B is the true continuation; otherwise a random span from a *different* document,
  and the sentences it displaced are put back for the next chunk;
* ``sop`` (ALBERT): B always follows A, and half the time the two are swapped;
* ``none`` (RoBERTa's full sentences): one segment of consecutive sentences, no pair task.

Sentences are already tokenized: lists of ids, with a parallel list saying which ids start a word (whole-word
masking uses it).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

TASKS = ("nsp", "sop", "none")


@dataclass
class Sentence:
    """A tokenized sentence: token ids and, per token, whether it starts a word."""

    ids: list[int]
    word_starts: list[bool]


@dataclass
class Instance:
    """One unmasked training sequence: ``[CLS] A [SEP] B [SEP]`` (or ``[CLS] A [SEP]``) and its pair label."""

    input_ids: list[int]
    token_type_ids: list[int]
    word_starts: list[bool]
    label: int  # nsp: 1 = B is random; sop: 1 = swapped; none: 0


@dataclass
class SpecialIds:
    """The ids instances are built from."""

    cls: int
    sep: int
    pad: int
    mask: int


def concat_sentences(sentences: list[Sentence]) -> Sentence:
    """The sentences run together as one (ids and word starts)."""
    return Sentence([i for s in sentences for i in s.ids], [w for s in sentences for w in s.word_starts])


def _random_span(documents: list[list[Sentence]], exclude: int, target: int, rng: random.Random) -> list[Sentence]:
    """Sentences from a random other document, from a random start, up to ``target`` tokens."""
    if len(documents) < 2:
        raise ValueError("next-sentence prediction needs at least two documents in the corpus")
    other = rng.randrange(len(documents) - 1)  # one of the others, uniformly (no retries that could all miss)
    document = documents[other + (other >= exclude)]
    start = rng.randrange(len(document))
    span, length = [], 0
    for sentence in document[start:]:
        span.append(sentence)
        length += len(sentence.ids)
        if length >= target:
            break
    return span


def with_specials(a: Sentence, b: Sentence | None, special: SpecialIds) -> tuple[list[int], list[int], list[bool]]:
    """``[CLS] A [SEP]`` (``B [SEP]`` after it): ids, segment ids and word starts."""
    ids = [special.cls, *a.ids, special.sep]
    types = [0] * len(ids)
    starts = [True, *a.word_starts, True]
    if b is not None:
        ids += [*b.ids, special.sep]
        types += [1] * (len(b.ids) + 1)
        starts += [*b.word_starts, True]
    return ids, types, starts


def instances_from_document(
    documents: list[list[Sentence]],
    index: int,
    max_seq_length: int,
    special: SpecialIds,
    rng: random.Random,
    task: str = "nsp",
    short_seq_prob: float = 0.1,
) -> list[Instance]:
    """All instances cut from ``documents[index]`` (google-research/bert's ``create_instances_from_document``)."""
    if task not in TASKS:
        raise ValueError(f"pair task must be one of {TASKS}, got {task!r}")
    document = documents[index]
    max_tokens = max_seq_length - (3 if task != "none" else 2)
    if max_tokens < 2:
        raise ValueError(f"max_seq_length {max_seq_length} leaves no room for text")
    target = rng.randint(2, max_tokens) if rng.random() < short_seq_prob else max_tokens
    instances, chunk, length, i = [], [], 0, 0
    while i < len(document):
        chunk.append(document[i])
        length += len(document[i].ids)
        if i == len(document) - 1 or length >= target:
            if task == "none":
                a = concat_sentences(chunk)
                del a.ids[max_tokens:], a.word_starts[max_tokens:]
                instances.append(Instance(*with_specials(a, None, special), label=0))
            elif pair := _split_pair(documents, index, chunk, target, rng, task):
                a, b, label, put_back = pair
                i -= put_back
                truncate_pair(a, b, max_tokens, rng)
                instances.append(Instance(*with_specials(a, b, special), label=label))
            chunk, length = [], 0
            target = rng.randint(2, max_tokens) if rng.random() < short_seq_prob else max_tokens
        i += 1
    return instances


def _split_pair(documents, index, chunk, target, rng, task):
    """Split a chunk into (A, B, label, sentences to put back); None when a lone sentence cannot pair."""
    cut = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
    a = concat_sentences(chunk[:cut])
    if task == "nsp" and (len(chunk) == 1 or rng.random() < 0.5):
        if len(documents) < 2:
            raise ValueError("next-sentence prediction needs at least two documents in the corpus")
        b = concat_sentences(_random_span(documents, index, max(1, target - len(a.ids)), rng))
        return a, b, 1, len(chunk) - cut  # the displaced sentences are used for the next chunk
    if len(chunk) == 1:
        return None  # SOP needs two real segments
    b = concat_sentences(chunk[cut:])
    if task == "sop" and rng.random() < 0.5:
        return b, a, 1, 0
    return a, b, 0, 0


def truncate_pair(a: Sentence, b: Sentence, max_tokens: int, rng: random.Random) -> None:
    """Trim the longer segment, from its front or back at random, until both fit (google-research/bert)."""
    while len(a.ids) + len(b.ids) > max_tokens:
        longer = a if len(a.ids) > len(b.ids) else b
        at = 0 if rng.random() < 0.5 else -1
        del longer.ids[at], longer.word_starts[at]
    for segment in (a, b):  # a segment cut at the front may start mid-word
        if segment.word_starts:
            segment.word_starts[0] = True


def create_instances(
    documents: list[list[Sentence]],
    max_seq_length: int,
    special: SpecialIds,
    rng: random.Random,
    task: str = "nsp",
    short_seq_prob: float = 0.1,
) -> list[Instance]:
    """Instances from every document, shuffled (one pass; static masking repeats this ``dupe_factor`` times)."""
    documents = [d for d in documents if any(s.ids for s in d)]
    if not documents:
        raise ValueError("the corpus has no tokens")
    instances = []
    for index in range(len(documents)):
        instances.extend(instances_from_document(documents, index, max_seq_length, special, rng, task,
                                                 short_seq_prob))
    rng.shuffle(instances)
    return instances
