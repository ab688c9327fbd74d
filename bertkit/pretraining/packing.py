"""Packed sequences (RoBERTa's FULL-SENTENCES, Cramming's packing): every token of the corpus in a sequence of full
length, ``[CLS] tokens… [SEP]``, nothing cut away and no short sequences of padding.

Each document's tokens run on as one stream, cut every ``max_seq_length - 2`` tokens, so a sentence may continue
into the next sequence; only each document's last sequence is shorter. With ``across_documents`` the documents
run on as one stream with ``[SEP]`` between them, so that last sequence fills up too — a sequence then crosses a
document boundary, which happens only when asked.
"""

from __future__ import annotations

import random

from .instances import Instance, Sentence, SpecialIds, concat_sentences, with_specials


def token_streams(documents: list[list[Sentence]], across_documents: bool, sep: int) -> list[Sentence]:
    """One stream of tokens per document, or one for the corpus with ``[SEP]`` between its documents."""
    streams = [concat_sentences(document) for document in documents]
    streams = [s for s in streams if s.ids]
    if not across_documents or not streams:
        return streams
    separated = [part for stream in streams for part in (stream, Sentence([sep], [True]))][:-1]
    return [concat_sentences(separated)]


def packed_instances(documents: list[list[Sentence]], max_seq_length: int, special: SpecialIds,
                     rng: random.Random, across_documents: bool = False) -> list[Instance]:
    """Every token in full-length single-segment instances (each stream's last one shorter), shuffled."""
    width = max_seq_length - 2
    if width < 2:
        raise ValueError(f"max_seq_length {max_seq_length} leaves no room for text")
    instances = []
    for stream in token_streams(documents, across_documents, special.sep):
        for start in range(0, len(stream.ids), width):
            chunk = Sentence(stream.ids[start:start + width], stream.word_starts[start:start + width])
            chunk.word_starts[0] = True  # a sequence cut mid-word starts with a (partial) word of its own
            instances.append(Instance(*with_specials(chunk, None, special), label=0))
    if not instances:
        raise ValueError("the corpus has no tokens")
    rng.shuffle(instances)
    return instances
